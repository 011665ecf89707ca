//! Who may use the dashboard: with an admin token set, a browser signs in with it, or as a
//! dashboard user with a password, and gets a session (an HttpOnly, SameSite=Strict cookie) whose
//! writes must carry its CSRF token; a script sends the token itself as a bearer header. A user's
//! session is checked against the store on every request (see `api`), so a removed user is out
//! at once and a changed role applies at once, on every control-plane copy. Without an admin token (loopback only, enforced by
//! the CLI) everyone is an admin, and writes still need the process's CSRF token from `/api/me`,
//! so another site cannot post through a browser.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::http::{HeaderMap, Method, header};
use subtle::ConstantTimeEq;

/// How long a session lasts without use.
const IDLE: Duration = Duration::from_secs(12 * 60 * 60);
/// Most sessions kept (the oldest go first).
const MAX_SESSIONS: usize = 10_000;
/// The session cookie's name.
pub const COOKIE: &str = "tr_session";

/// What a signed-in caller may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Admin,
    Viewer,
}

impl Role {
    /// The role a stored user has (`admin` or `viewer`).
    pub fn parse(name: &str) -> Option<Role> {
        match name {
            "admin" => Some(Role::Admin),
            "viewer" => Some(Role::Viewer),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Viewer => "viewer",
        }
    }
}

/// A caller the dashboard knows.
#[derive(Debug, Clone)]
pub struct Caller {
    pub user: String,
    pub role: Role,
    /// The token writes must echo in `x-csrf-token` (empty for bearer callers, who need none).
    pub csrf: String,
    /// How the caller proved who it is: `none`, `session` or `token`.
    pub via: &'static str,
    /// The session belongs to a dashboard user (not the admin token): its role is the store's.
    pub account: bool,
}

#[derive(Debug, Clone)]
struct Session {
    user: String,
    role: Role,
    account: bool,
    csrf: String,
    used: Instant,
}

/// Why a request is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// No valid session or token (401).
    SignIn,
    /// A write without the right CSRF token (403).
    Csrf,
    /// A viewer tried to write (403).
    ReadOnly,
}

/// Sessions and the admin token.
#[derive(Debug)]
pub struct Auth {
    admin_token: Option<String>,
    /// The CSRF token of the open (no admin token) mode.
    open_csrf: String,
    sessions: Mutex<HashMap<String, Session>>,
    /// Failed password sign-ins in a row, per user name, and when the last one was.
    failures: Mutex<HashMap<String, (u32, Instant)>>,
}

/// Failed sign-ins in a row after which a name must wait [`LOCKOUT`].
const MAX_FAILURES: u32 = 5;
/// How long a name waits after [`MAX_FAILURES`] failed sign-ins.
pub const LOCKOUT: Duration = Duration::from_secs(60);

fn random_token() -> String {
    use rand::Rng;
    let bytes: [u8; 32] = rand::rng().random();
    hex::encode(bytes)
}

impl Auth {
    pub fn new(admin_token: Option<String>) -> Auth {
        Auth {
            admin_token: admin_token.filter(|t| !t.is_empty()),
            open_csrf: random_token(),
            sessions: Mutex::default(),
            failures: Mutex::default(),
        }
    }

    /// Whether the dashboard asks for sign-in.
    pub fn is_open(&self) -> bool {
        self.admin_token.is_none()
    }

    fn token_matches(&self, given: &str) -> bool {
        self.admin_token
            .as_deref()
            .is_some_and(|t| bool::from(t.as_bytes().ct_eq(given.as_bytes())))
    }

    /// Signs in with the admin token: a new session id and its caller.
    pub fn sign_in_with_token(&self, token: &str) -> Option<(String, Caller)> {
        if !self.token_matches(token) {
            return None;
        }
        Some(self.open_session("admin", Role::Admin, false))
    }

    /// Whether password sign-ins for `name` must wait (too many failures in a row).
    pub fn locked_out(&self, name: &str) -> bool {
        self.failures.lock().is_ok_and(|f| {
            f.get(name)
                .is_some_and(|(n, at)| *n >= MAX_FAILURES && at.elapsed() < LOCKOUT)
        })
    }

    /// Counts a failed password sign-in (or, with `ok`, clears the count).
    pub fn signed_in(&self, name: &str, ok: bool) {
        let Ok(mut failures) = self.failures.lock() else {
            return;
        };
        if ok {
            failures.remove(name);
            return;
        }
        if failures.len() >= MAX_SESSIONS {
            failures.retain(|_, (_, at)| at.elapsed() < LOCKOUT);
        }
        let entry = failures
            .entry(name.to_string())
            .or_insert((0, Instant::now()));
        if entry.1.elapsed() >= LOCKOUT {
            entry.0 = 0;
        }
        entry.0 += 1;
        entry.1 = Instant::now();
    }

    /// Gives every session of dashboard user `user` the role the store has now, or ends them
    /// all when the user is gone (`None`).
    pub fn refresh_account(&self, user: &str, role: Option<Role>) {
        if let Ok(mut sessions) = self.sessions.lock() {
            match role {
                Some(role) => sessions
                    .values_mut()
                    .filter(|s| s.account && s.user == user)
                    .for_each(|s| s.role = role),
                None => sessions.retain(|_, s| !(s.account && s.user == user)),
            }
        }
    }

    /// A new session for `user` (`account`: a dashboard user, not the admin token).
    pub fn open_session(&self, user: &str, role: Role, account: bool) -> (String, Caller) {
        let id = random_token();
        let csrf = random_token();
        if let Ok(mut sessions) = self.sessions.lock() {
            sessions.retain(|_, s| s.used.elapsed() < IDLE);
            if sessions.len() >= MAX_SESSIONS
                && let Some(oldest) = sessions
                    .iter()
                    .min_by_key(|(_, s)| s.used)
                    .map(|(k, _)| k.clone())
            {
                sessions.remove(&oldest);
            }
            sessions.insert(
                id.clone(),
                Session {
                    user: user.to_string(),
                    role,
                    account,
                    csrf: csrf.clone(),
                    used: Instant::now(),
                },
            );
        }
        let caller = Caller {
            user: user.to_string(),
            role,
            csrf,
            via: "session",
            account,
        };
        (id, caller)
    }

    /// Ends the session the request carries.
    pub fn sign_out(&self, headers: &HeaderMap) {
        if let (Some(id), Ok(mut sessions)) = (session_id(headers), self.sessions.lock()) {
            sessions.remove(&id);
        }
    }

    /// Who is calling, and whether this request may do what it does: the sign-in and the CSRF
    /// token here; the role (which a user's store row may have changed) in `api`'s extractors.
    pub fn check(
        &self,
        method: &Method,
        headers: &HeaderMap,
        write: bool,
    ) -> Result<Caller, Refusal> {
        let writes = write || !matches!(*method, Method::GET | Method::HEAD);
        if self.is_open() {
            let caller = Caller {
                user: "admin".into(),
                role: Role::Admin,
                csrf: self.open_csrf.clone(),
                via: "none",
                account: false,
            };
            if writes && csrf_header(headers) != Some(self.open_csrf.as_str()) {
                return Err(Refusal::Csrf);
            }
            return Ok(caller);
        }
        if let Some(token) = bearer(headers) {
            return if self.token_matches(token) {
                Ok(Caller {
                    user: "admin".into(),
                    role: Role::Admin,
                    csrf: String::new(),
                    via: "token",
                    account: false,
                })
            } else {
                Err(Refusal::SignIn)
            };
        }
        let id = session_id(headers).ok_or(Refusal::SignIn)?;
        let session = {
            let mut sessions = self.sessions.lock().map_err(|_| Refusal::SignIn)?;
            let s = sessions.get_mut(&id).ok_or(Refusal::SignIn)?;
            if s.used.elapsed() >= IDLE {
                sessions.remove(&id);
                return Err(Refusal::SignIn);
            }
            s.used = Instant::now();
            s.clone()
        };
        if writes {
            let given = csrf_header(headers).unwrap_or("");
            if !bool::from(given.as_bytes().ct_eq(session.csrf.as_bytes())) {
                return Err(Refusal::Csrf);
            }
        }
        Ok(Caller {
            user: session.user,
            role: session.role,
            csrf: session.csrf,
            via: "session",
            account: session.account,
        })
    }
}

/// The `Set-Cookie` value for a session.
pub fn cookie(id: &str) -> String {
    format!(
        "{COOKIE}={id}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}",
        IDLE.as_secs()
    )
}

/// The `Set-Cookie` value that ends a session.
pub fn expired_cookie() -> String {
    format!("{COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0")
}

fn session_id(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value.to_string())
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")
}

fn csrf_header(headers: &HeaderMap) -> Option<&str> {
    headers.get("x-csrf-token")?.to_str().ok()
}

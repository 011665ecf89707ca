//! The data plane's listener flags: where the admin endpoints listen, connection hygiene (timeouts,
//! HTTP/2 limits, caps), trusted proxies, the drain on shutdown, and pinned host names.

use std::net::SocketAddr;
use std::time::Duration;

use tokenrouter_data_plane::{ListenerLimits, Resolver};

/// A duration flag: `10s`, `500ms`, `2m`, or plain seconds (`10`).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let n: u64 = number
        .parse()
        .map_err(|_| format!("`{text}`: expected a duration such as 10s, 500ms, 2m, 12h or 30d"))?;
    let secs = |per: u64| {
        n.checked_mul(per)
            .map(Duration::from_secs)
            .ok_or_else(|| format!("`{text}` is too long"))
    };
    match unit {
        "" | "s" => Ok(Duration::from_secs(n)),
        "ms" => Ok(Duration::from_millis(n)),
        "m" => secs(60),
        "h" => secs(3600),
        "d" => secs(86_400),
        _ => Err(format!("`{text}`: the unit must be ms, s, m, h or d")),
    }
}

fn parse_net(text: &str) -> Result<ipnet::IpNet, String> {
    let text = text.trim();
    text.parse::<ipnet::IpNet>()
        .or_else(|_| text.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
        .map_err(|_| format!("`{text}` is neither an address nor a CIDR range"))
}

/// Listener options of `data-plane` and `serve`.
#[derive(clap::Args, Debug, Clone)]
pub struct ListenerArgs {
    /// Address of the admin endpoints (`/metrics`, `/status`, `/livez`, `/readyz`), kept off the
    /// public port.
    #[arg(long, env = "TOKENROUTER_ADMIN_ADDR", default_value = "127.0.0.1:9090")]
    pub admin_addr: SocketAddr,
    /// A request head must arrive within this long (also bounds an idle HTTP/1.1 keep-alive).
    #[arg(long, env = "TOKENROUTER_HEADER_READ_TIMEOUT", default_value = "10s", value_parser = parse_duration)]
    pub header_read_timeout: Duration,
    /// A request body must arrive within this long.
    #[arg(long, env = "TOKENROUTER_BODY_READ_TIMEOUT", default_value = "60s", value_parser = parse_duration)]
    pub body_read_timeout: Duration,
    /// After 5 s, a body must keep arriving at this many bytes per second on average (0: off).
    #[arg(long, env = "TOKENROUTER_BODY_MIN_RATE", default_value_t = 1024)]
    pub body_min_rate: u64,
    /// A connection with no request in flight for this long is closed.
    #[arg(long, env = "TOKENROUTER_KEEP_ALIVE_TIMEOUT", default_value = "60s", value_parser = parse_duration)]
    pub keep_alive_timeout: Duration,
    /// HTTP/2: streams open at once on one connection.
    #[arg(
        long,
        env = "TOKENROUTER_H2_MAX_CONCURRENT_STREAMS",
        default_value_t = 128
    )]
    pub h2_max_concurrent_streams: u32,
    /// HTTP/2 rapid-reset protection: streams a client may reset before the server takes them
    /// (the connection also ends after 1,024 streams the server had to refuse or reset).
    #[arg(long, env = "TOKENROUTER_H2_MAX_PENDING_RESETS", default_value_t = 20)]
    pub h2_max_pending_resets: usize,
    /// Largest request head in bytes (HTTP/2 header list; HTTP/1.1 read buffer; past it: 431).
    #[arg(long, env = "TOKENROUTER_MAX_HEADER_BYTES", default_value_t = 64 * 1024)]
    pub max_header_bytes: u32,
    /// Open connections; past it a new connection is answered 503 server_overloaded and closed.
    #[arg(long, env = "TOKENROUTER_MAX_CONNECTIONS", default_value_t = 10_000)]
    pub max_connections: usize,
    /// Requests in flight (a stream until its last byte); past it: 503 server_overloaded.
    #[arg(long, env = "TOKENROUTER_MAX_REQUESTS", default_value_t = 10_000)]
    pub max_requests: usize,
    /// Open connections from one client address (0: no cap); behind a trusted proxy, that
    /// client's requests in flight, by its X-Forwarded-For address.
    #[arg(long, env = "TOKENROUTER_MAX_CONNECTIONS_PER_IP", default_value_t = 0)]
    pub max_connections_per_ip: usize,
    /// Load balancers whose X-Forwarded-For is believed: addresses or CIDR ranges, comma-separated.
    #[arg(long, env = "TOKENROUTER_TRUSTED_PROXIES", value_delimiter = ',', value_parser = parse_net)]
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// On SIGTERM, how long requests and streams in flight may take to finish.
    #[arg(long, env = "TOKENROUTER_DRAIN_TIMEOUT", default_value = "30s", value_parser = parse_duration)]
    pub drain_timeout: Duration,
    /// Pin a provider host name to addresses, like curl's --resolve (`NAME=ADDR[,ADDR]`, repeatable).
    #[arg(long = "resolve", value_name = "NAME=ADDR")]
    pub resolve: Vec<String>,
}

impl ListenerArgs {
    pub fn limits(&self) -> ListenerLimits {
        ListenerLimits {
            header_read_timeout: self.header_read_timeout,
            body_read_timeout: self.body_read_timeout,
            body_min_bytes_per_sec: self.body_min_rate,
            keep_alive_timeout: self.keep_alive_timeout,
            h2_max_concurrent_streams: self.h2_max_concurrent_streams,
            max_header_bytes: self.max_header_bytes,
            h2_max_pending_resets: self.h2_max_pending_resets,
            max_connections: self.max_connections,
            max_requests: self.max_requests,
            max_connections_per_ip: self.max_connections_per_ip,
            trusted_proxies: self.trusted_proxies.clone(),
        }
    }

    pub fn resolver(&self) -> anyhow::Result<Resolver> {
        self.resolve
            .iter()
            .try_fold(Resolver::default(), |r, pin| r.parse_pin(pin))
            .map_err(|e| anyhow::anyhow!("--resolve {e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_and_ranges_parse() {
        assert_eq!(parse_duration("10s").unwrap(), Duration::from_secs(10));
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(parse_duration("2m").unwrap(), Duration::from_secs(120));
        assert_eq!(parse_duration("7").unwrap(), Duration::from_secs(7));
        assert!(parse_duration("ten").is_err());
        assert_eq!(parse_duration("5h").unwrap(), Duration::from_secs(5 * 3600));
        assert_eq!(
            parse_duration("30d").unwrap(),
            Duration::from_secs(30 * 86_400)
        );
        assert!(parse_duration("5w").is_err());
        assert!(
            parse_duration("99999999999999999d").is_err(),
            "overflow is an error"
        );
        assert!(parse_net("10.0.0.0/8").is_ok());
        assert!(parse_net("192.0.2.1").is_ok());
        assert!(parse_net("nope").is_err());
    }
}

// The dashboard in a real headless Chromium (Debian's package, driven over CDP by puppeteer-core):
// sign in with the admin token, check the overview's numbers against the requests the test made,
// filter the request log and open a request (its attempts), see the providers' live signals as the
// data plane reported them and the configuration, create a key, give it limits and use it on the
// data plane, then sign in again as a viewer (a dashboard user with a password) who cannot write.
// Saves a screenshot of every page to TOKENROUTER_SCREENSHOTS.
//
// Environment (set by tests/tests/e2e/dashboard.rs): TOKENROUTER_DASHBOARD_URL, TOKENROUTER_ADMIN_TOKEN,
// TOKENROUTER_BASE_URL (the data plane's /v1), TOKENROUTER_EXPECTED_REQUESTS, TOKENROUTER_EXPECTED_ERRORS,
// TOKENROUTER_CHROMIUM (the browser binary), TOKENROUTER_SCREENSHOTS (a directory),
// TOKENROUTER_VIEWER and TOKENROUTER_VIEWER_PASSWORD (a dashboard user with the viewer role).

import { mkdirSync } from 'node:fs';
import puppeteer from 'puppeteer-core';

const env = process.env;
const base = env.TOKENROUTER_DASHBOARD_URL;
const shots = env.TOKENROUTER_SCREENSHOTS;
mkdirSync(shots, { recursive: true });

function check(condition, what, detail = '') {
  if (!condition) {
    console.log(`FAILED: ${what}${detail && ` (${typeof detail === 'string' ? detail : JSON.stringify(detail)})`}`);
    process.exit(1);
  }
  console.log(`ok: ${what}`);
}

const browser = await puppeteer.launch({
  executablePath: env.TOKENROUTER_CHROMIUM,
  headless: true,
  args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'],
});
const errors = [];
try {
  const page = await browser.newPage();
  await page.setViewport({ width: 1440, height: 1000 });
  page.on('pageerror', (e) => errors.push(e.message));

  async function ready(view) {
    await page.waitForSelector(`#view-${view}[data-state="ready"]`, { timeout: 15000 });
  }
  async function shot(name) {
    await new Promise((r) => setTimeout(r, 300)); // charts draw on the next frame
    await page.screenshot({ path: `${shots}/${name}.png`, fullPage: true });
    console.log(`screenshot: ${shots}/${name}.png`);
  }

  // Sign in.
  await page.goto(`${base}/#/overview?range=24h`, { waitUntil: 'networkidle0' });
  await page.waitForSelector('#signin-screen:not([hidden])');
  await shot('signin');
  await page.type('#signin-token', 'not-the-token');
  await page.click('#signin-submit');
  await page.waitForFunction(() => document.querySelector('#signin-error')?.textContent.length > 0);
  check(true, 'a wrong token is refused on the page');
  await page.$eval('#signin-token', (e) => { e.value = ''; });
  await page.type('#signin-token', env.TOKENROUTER_ADMIN_TOKEN);
  await page.click('#signin-submit');
  await ready('overview');
  const cookies = await browser.cookies();
  const session = cookies.find((c) => c.name === 'tr_session');
  check(session && session.httpOnly && session.sameSite === 'Strict', 'the session cookie is HttpOnly and SameSite=Strict', cookies);

  // The overview's numbers are the requests this test made.
  const value = async (id) => page.$eval(`#${id}`, (e) => Number(e.dataset.value ?? e.querySelector('[data-value]')?.dataset.value));
  const requests = await value('total-requests');
  check(requests === Number(env.TOKENROUTER_EXPECTED_REQUESTS), 'overview: requests match', requests);
  const errorsShown = await value('total-errors');
  check(errorsShown === Number(env.TOKENROUTER_EXPECTED_ERRORS), 'overview: errors match', errorsShown);
  check((await value('total-prompt-tokens')) > 0, 'overview: prompt tokens');
  const charts = await page.$$('.uplot');
  check(charts.length >= 4, 'overview: uPlot charts drawn', charts.length);
  await shot('overview');

  // Breakdown by provider adds up.
  await page.goto(`${base}/#/breakdown?range=24h&by=provider`);
  await ready('breakdown');
  const total = await page.$$eval('table tbody tr', (rows) => rows.length);
  check(total >= 1, 'breakdown: rows', total);
  await shot('breakdown');

  // The request log: filter to the errors, open one.
  await page.goto(`${base}/#/requests?range=24h`);
  await ready('requests');
  const all = await page.$$eval('.request-row', (rows) => rows.length);
  check(all === Math.min(Number(env.TOKENROUTER_EXPECTED_REQUESTS), 50), 'request log: newest first, one page', all);
  await shot('requests');
  await page.$eval('#filter-status', (e) => { e.value = ''; });
  await page.type('#filter-status', 'error');
  await page.click('#filter-apply');
  await page.waitForFunction(
    (n) => document.querySelectorAll('.request-row').length === n && document.querySelector('#view-requests')?.dataset.state === 'ready',
    { timeout: 15000 },
    Number(env.TOKENROUTER_EXPECTED_ERRORS),
  );
  check(true, 'request log: the status filter leaves the errors');
  await page.click('.request-row');
  await ready('request');
  const detail = await page.$eval('#request-detail', (e) => e.textContent);
  check(/Status5\d\d/.test(detail) && detail.includes('sim-broken'), 'request detail: its status and provider', detail.slice(0, 200));
  const attempts = await page.$$eval('#request-attempts .attempt-row', (rows) => rows.map((r) => [r.dataset.outcome, r.textContent]));
  check(attempts.length >= 1 && attempts.every(([o, t]) => o === 'failed' && t.includes('sim-broken') && t.includes('500')), 'request detail: the failed attempt with its status', attempts);
  await shot('request-detail');

  // Providers: the live signals the data plane reports (every 10 s), per candidate.
  await page.goto(`${base}/#/providers`);
  await ready('providers');
  let measured = [];
  for (let i = 0; i < 30; i++) {
    measured = await page.$$eval('.provider-row', (rows) => rows.map((r) => ({
      name: r.dataset.name, model: r.dataset.model, breaker: r.querySelector('.breaker')?.dataset.breaker,
    })));
    if (measured.some((m) => m.name === 'sim' && m.model === 'gpt-4o-mini') && measured.some((m) => m.name === 'sim-broken' && m.model)) break;
    await new Promise((res) => setTimeout(res, 1000));
    await page.reload({ waitUntil: 'networkidle0' });
    await ready('providers');
  }
  check(measured.some((m) => m.name === 'sim' && m.model === 'gpt-4o-mini' && m.breaker === 'closed'), 'providers: the measured candidate, its breaker closed', measured);
  const brokenRow = await page.$eval('.provider-row[data-name="sim-broken"]', (r) => r.textContent);
  check(/(^|[^\d.])[1-9]\d*(\.\d+)?%/.test(brokenRow), 'providers: the failing provider shows its error rate', brokenRow);
  await shot('providers');
  await page.goto(`${base}/#/config`);
  await ready('config');
  const config = await page.$eval('#view-config', (e) => e.textContent);
  check(config.includes('sim'), 'configuration: the providers', config.slice(0, 200));
  await shot('config');

  // Keys: create one (its secret shown once), then use it.
  await page.goto(`${base}/#/keys`);
  await ready('keys');
  await page.type('#key-name', 'browser-made');
  await page.click('#key-create');
  await page.waitForSelector('#new-key-secret', { timeout: 15000 });
  const secret = await page.$eval('#new-key-secret', (e) => e.textContent.trim());
  check(secret.length >= 20, 'keys: the new secret is shown once');
  await shot('keys');
  let status = 0;
  for (let i = 0; i < 50 && status !== 200; i++) {
    const r = await fetch(`${env.TOKENROUTER_BASE_URL}/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${secret}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'made in the browser' }] }),
    });
    status = r.status;
    if (status !== 200) await new Promise((res) => setTimeout(res, 100));
  }
  check(status === 200, 'the key made in the browser works on the data plane', status);
  await page.reload({ waitUntil: 'networkidle0' });
  await ready('keys');
  const listed = await page.$eval('#view-keys', (e) => e.textContent);
  check(!listed.includes(secret) && listed.includes('browser-made'), 'keys: listed by prefix only');
  // Its use reaches the page once the data plane's usage batch is stored (about a second).
  let minute = '';
  for (let i = 0; i < 30 && !/^[^]*1 req[^]*1 req/.test(minute); i++) {
    if (i) {
      await new Promise((res) => setTimeout(res, 500));
      await page.reload({ waitUntil: 'networkidle0' });
      await ready('keys');
    }
    minute = await page.$eval('.key-row[data-name="browser-made"]', (r) => r.textContent);
  }
  check(/1 req[^]*1 req/.test(minute), 'keys: its use in the last minute and today', minute);

  // Limits set on the page reach the data plane (its rate-limit headers name them).
  await page.click('.key-limits[data-name="browser-made"]');
  await page.waitForSelector('#key-limits-form');
  await page.type('#limit-rpm', '120');
  await page.type('#limit-budget', '5');
  await page.select('#limit-period', 'day');
  await page.click('#limit-save');
  await page.waitForFunction(() => document.querySelector('.key-row[data-name="browser-made"]')?.textContent.includes('120'), { timeout: 15000 });
  const limited = await page.$eval('.key-row[data-name="browser-made"]', (r) => r.textContent);
  check(limited.includes('a day'), 'keys: the budget shows against its limit', limited);
  await shot('keys-limits');
  let limitHeader = null;
  for (let i = 0; i < 50 && limitHeader !== '120'; i++) {
    const r = await fetch(`${env.TOKENROUTER_BASE_URL}/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${secret}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'limited now' }] }),
    });
    limitHeader = r.headers.get('x-ratelimit-limit-requests');
    if (limitHeader !== '120') await new Promise((res) => setTimeout(res, 100));
  }
  check(limitHeader === '120', 'the limit set on the page holds on the data plane', limitHeader);

  // A viewer signs in with a name and password, reads, and has nothing to write with.
  await page.click('#sign-out');
  await page.waitForSelector('#signin-screen:not([hidden])');
  await page.click('#signin-mode-password');
  await page.type('#signin-user', env.TOKENROUTER_VIEWER);
  await page.type('#signin-password', env.TOKENROUTER_VIEWER_PASSWORD);
  await page.click('#signin-submit');
  await page.waitForSelector('#signin-screen[hidden]', { timeout: 15000 });
  await page.goto(`${base}/#/overview?range=24h`);
  await ready('overview');
  await page.goto(`${base}/#/keys`);
  await ready('keys');
  check((await page.$('#key-create')) === null && (await page.$('.key-disable')) === null, 'viewer: no key management on the page');
  const asViewer = await page.$eval('#view-keys', (e) => e.textContent);
  check(asViewer.includes('browser-made'), 'viewer: the keys are listed');
  await shot('keys-viewer');
  check(errors.length === 0, 'no script errors', errors);
} finally {
  await browser.close();
}
console.log('all dashboard checks passed');

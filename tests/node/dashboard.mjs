// The dashboard in a real headless Chromium (Debian's package, driven over CDP by puppeteer-core):
// sign in with the admin token, check the overview's numbers against the requests the test made,
// filter the request log and open a request, see the other pages, create a key and use it on the
// data plane. Saves a screenshot of every page to TOKENROUTER_SCREENSHOTS.
//
// Environment (set by tests/tests/e2e/dashboard.rs): TOKENROUTER_DASHBOARD_URL, TOKENROUTER_ADMIN_TOKEN,
// TOKENROUTER_BASE_URL (the data plane's /v1), TOKENROUTER_EXPECTED_REQUESTS, TOKENROUTER_EXPECTED_ERRORS,
// TOKENROUTER_CHROMIUM (the browser binary), TOKENROUTER_SCREENSHOTS (a directory).

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
  await shot('request-detail');

  // Providers and configuration.
  await page.goto(`${base}/#/providers`);
  await ready('providers');
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
  check(errors.length === 0, 'no script errors', errors);
} finally {
  await browser.close();
}
console.log('all dashboard checks passed');

// tests/dashboard/browser.mjs: the dashboard in a real browser (Debian's
// chromium, driven by puppeteer-core) for tests/e2e/dashboard-browser.sh.
// Prints one "key value" line per finding; the shell checks them against
// the database.  Settings come from the environment:
//   DASH_URL   the page (ending in /), DASH_USER DASH_PASS its password
//   EVIL_URL   a page of another origin that POSTs to the dashboard
//   XSS_ID     a dead job whose body holds markup
//   SHOTS      where to keep the screenshots
import puppeteer from 'puppeteer-core';

const env = (k) => {
	if (!process.env[k])
		throw new Error(`${k} not set`);
	return process.env[k];
};
const out = (k, v) => console.log(`${k} ${typeof v === 'string' ? v : JSON.stringify(v)}`);

const browser = await puppeteer.launch({
	executablePath: '/usr/bin/chromium',
	headless: false,		/* the flag below picks the mode */
	args: ['--headless=new', '--no-sandbox', '--disable-gpu',
	    '--window-size=1280,1000'],
	defaultViewport: { width: 1280, height: 1000 },
});
const errors = [];
const dialogs = [];
try {
	const page = await browser.newPage();
	await page.authenticate({ username: env('DASH_USER'),
	    password: env('DASH_PASS') });
	page.on('console', (m) => {
		if (m.type() === 'error' || m.type() === 'warn')
			errors.push(`${m.type()}: ${m.text()}`);
	});
	page.on('pageerror', (e) => errors.push(`pageerror: ${e.message}`));
	page.on('requestfailed', (r) =>
	    errors.push(`requestfailed: ${r.url()} ${r.failure()?.errorText}`));
	page.on('dialog', async (d) => {
		dialogs.push(d.message());
		await d.dismiss();
	});
	// CSP violations, as the page itself sees them.
	await page.evaluateOnNewDocument(() => {
		window.__csp = [];
		document.addEventListener('securitypolicyviolation', (e) =>
		    window.__csp.push(`${e.violatedDirective} ${e.blockedURI}`));
	});

	const resp = await page.goto(env('DASH_URL'), { waitUntil: 'load' });
	out('status', String(resp.status()));
	await page.waitForSelector('body[data-loaded]');
	// Every queue's counts shown (they are "…" until first counted).
	await page.waitForFunction(() => {
		const tds = document.querySelectorAll('#queues td[data-k=dead]');
		return tds.length > 0 && [...tds].every((t) => /^\d+$/.test(t.textContent));
	}, { timeout: 20000 });
	const counts = await page.$$eval('#queues tbody tr', (rows) => rows.map((r) =>
	    [r.dataset.queue, ...['queued', 'running', 'retry', 'dead', 'paused']
		.map((k) => r.querySelector(`td[data-k=${k}]`).textContent)].join(' ')));
	for (const c of counts)
		out('queue', c);
	out('chart_lines', String(await page.$$eval('#chart polyline', (p) => p.length)));
	await page.screenshot({ path: `${env('SHOTS')}/dashboard.png`, fullPage: true });

	// The dead job whose body is markup: its detail shows it as text.
	const id = env('XSS_ID');
	await page.waitForSelector(`#jobs tr[data-id="${id}"]`);
	await page.click(`#jobs tr[data-id="${id}"]`);
	await page.waitForFunction(() => document.getElementById('d-body').textContent.length > 0);
	out('body_text', JSON.stringify(await page.$eval('#d-body', (e) => e.textContent)));
	out('body_visible', String(await page.$eval('#d-body', (e) =>
	    e.offsetParent !== null && e.getBoundingClientRect().height > 0)));
	out('error_text', JSON.stringify(await page.$eval('#d-error', (e) => e.textContent)));
	out('imgs', String(await page.$$eval('img', (i) => i.length)));
	out('scripts', String(await page.$$eval('script', (s) => s.length)));
	await page.$eval('#detail', (e) => e.scrollIntoView());
	await page.screenshot({ path: `${env('SHOTS')}/detail.png`, fullPage: true });

	// A retry click: the job's state changes in the database.
	await page.waitForSelector('#d-actions button[data-op=retry]');
	await page.click('#d-actions button[data-op=retry]');
	await page.waitForFunction(() =>
	    /retry: 1 changed/.test(document.getElementById('message').textContent),
	    { timeout: 10000 });
	out('retry_clicked', 'yes');
	out('csp', JSON.stringify(await page.evaluate(() => window.__csp)));

	// Another origin's page tries the same POST (fetch and a form).
	const evil = await browser.newPage();
	await evil.authenticate({ username: env('DASH_USER'),
	    password: env('DASH_PASS') });
	await evil.goto(env('EVIL_URL'), { waitUntil: 'load' });
	await evil.waitForFunction(() => document.title === 'sent', { timeout: 15000 });
	out('evil_fetch', await evil.evaluate(() => window.__fetch));
	out('evil_done', 'yes');
} finally {
	out('dialogs', dialogs);
	out('console_errors', errors);
	await browser.close();
}

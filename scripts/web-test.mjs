#!/usr/bin/env node
// `npm run test:web`: drives the web demo (web/) in Debian's headless Chromium with playwright-core.
// The page must load cross-origin isolated on the wasm backend, load the shipped pass-key model,
// recall a key planted beyond the attention window (and not recall it with the memory wiped),
// draw the memory's strips, and train the tiny model in a Web Worker with a progress bar.
// Writes a screenshot to results/web/demo.png. Closes with "web demo: N passed, N failed".
// Usage: node scripts/web-test.mjs   (after `npm run build` and scripts/install-chromium.sh)
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import { loadText } from '../dist/src/node.js';
import { serveWeb } from './serve-web.mjs';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const executablePath = process.env.CHROMIUM ?? '/usr/bin/chromium';
const screenshot = join(root, 'results', 'web', 'demo.png');
const started = Date.now();
const checks = [];
function check(name, ok, detail = '') {
  checks.push({ name, ok });
  console.log(`${ok ? '✔' : '✖'} ${name}${detail ? ` — ${detail}` : ''}`);
}

const server = await serveWeb(0);
const profile = mkdtempSync(join(tmpdir(), 'titans-web-'));
const context = await chromium.launchPersistentContext(profile, {
  executablePath,
  headless: true,
  args: [
    '--no-sandbox',
    '--disable-gpu',
    '--disable-background-networking',
    '--disable-component-update',
    '--disable-sync',
    '--no-first-run',
  ],
  viewport: { width: 1200, height: 900 },
});
const errors = [];
try {
  const page = context.pages()[0] ?? (await context.newPage());
  page.on('pageerror', (e) => errors.push(`page error: ${e.message}`));
  page.on('console', (m) => {
    if (m.type() === 'error') errors.push(`console: ${m.text()}`);
  });
  page.setDefaultTimeout(120_000);
  await page.goto(server.url);
  await page.waitForFunction(() => /ready|error/.test(document.getElementById('status').textContent));
  const status = await page.textContent('#status');
  check(
    'the page loads cross-origin isolated on the wasm backend',
    /backend wasm · cross-origin isolated: true.*ready/.test(status),
    status,
  );
  check(
    'the shipped pass-key model loads',
    /TitansModel\(mag, 17\d,\d{3} parameters/.test(await page.textContent('#model-info')),
    await page.textContent('#model-info'),
  );

  // Plant a key far beyond the window in 1200 chars of filler, and ask.
  await page.fill('#key', '4');
  await page.fill('#depth', '20');
  await page.click('#plant');
  const fact = await page.textContent('#fact-info');
  const distance = Number(/(\d+) tokens between/.exec(fact)?.[1] ?? 0);
  check('the fact is planted beyond what attention reaches', distance > 62, fact);
  await page.click('#ask');
  await page.waitForSelector('#answer-text');
  const answer = (await page.textContent('#answer-text')).trim();
  check(
    'the model recalls the planted key from its memory',
    answer === '4',
    `answered ${JSON.stringify(answer)}`,
  );
  const wiped = await page.textContent('#answer-wiped');
  check(
    'with the memory wiped before the question it does not',
    !/big">4</.test(await page.innerHTML('#answer-wiped')),
    wiped.replace(/\s+/g, ' ').trim(),
  );
  await page.waitForFunction(() => document.querySelectorAll('#token-view span').length > 1000);
  const strips = await page.evaluate(() => document.getElementById('strips').height);
  check('the memory strips and the token view are drawn', strips > 100, `${strips} px of strips`);

  // The same in natural text (State of the Union prose, pasted in), with another key.
  const { text } = await loadText('builtin:sotu-small');
  await page.fill('#text', text.slice(40_000, 41_000).replace(/\s+/g, ' '));
  await page.fill('#key', '8');
  await page.click('#plant');
  await page.click('#ask');
  await page.waitForFunction(() => document.getElementById('answer-text')?.textContent.trim() !== '4');
  const prose = (await page.textContent('#answer-text')).trim();
  check(
    'it recalls a key planted in natural text too',
    prose === '8',
    `answered ${JSON.stringify(prose)} · ${await page.textContent('#fact-info')}`,
  );

  // Back to the filler and the first key, for the picture.
  await page.click('#fill-filler');
  await page.fill('#key', '4');
  await page.click('#plant');
  await page.click('#ask');
  await page.waitForFunction(() => document.getElementById('answer-text')?.textContent.trim() === '4');

  // Train the tiny model in the worker for a few steps: the progress bar fills and "your model" appears.
  await page.fill('#train-steps', '6');
  await page.click('#train');
  await page.waitForFunction(
    () => /done|error/.test(document.getElementById('train-info').textContent),
    null,
    {
      timeout: 180_000,
    },
  );
  const trained = await page.textContent('#train-info');
  check('the worker trains the tiny model and hands it to the page', /done: 6 steps/.test(trained), trained);
  check(
    'the progress bar is full',
    (await page.evaluate(() => document.getElementById('train-progress').value)) === 1,
  );
  check('"your model" can be chosen', (await page.$$('#model-select option[value="yours"]')).length === 1);

  // Back on the shipped model, the planted fact and its strips, for the picture.
  await page.evaluate(() => document.getElementById('inside-section').scrollIntoView());
  mkdirSync(dirname(screenshot), { recursive: true });
  await page.screenshot({ path: screenshot, fullPage: true });
  console.log(`screenshot: ${screenshot}`);
  check('no errors in the page', errors.length === 0, errors.join(' | '));
} catch (e) {
  check('the run finished', false, String(e?.stack ?? e));
} finally {
  await context.close();
  await server.close();
  rmSync(profile, { recursive: true, force: true });
}
const failed = checks.filter((c) => !c.ok).length;
console.log(
  `web demo: ${checks.length - failed} passed, ${failed} failed (${((Date.now() - started) / 1000).toFixed(1)} s)`,
);
process.exit(failed === 0 ? 0 : 1);

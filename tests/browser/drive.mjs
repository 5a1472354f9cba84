// Drives one page of Debian's headless Chromium (playwright-core, no browser download) step by
// step, for tests whose steps interleave with other traffic (the console's tests: sign in, start
// a SIPp call, wait for its row, click hang-up, …).
//
//   node drive.mjs '{"viewport": {"width": 1280, "height": 800}}'
//
// Then one JSON command per line on stdin; one JSON answer per line on stdout, in order:
//   {"cmd": "goto", "url": "http://127.0.0.1:PORT/console/"}
//   {"cmd": "fill", "selector": "#username", "value": "AC…"}
//   {"cmd": "click", "selector": "…"}            (also "press" with "key")
//   {"cmd": "wait", "selector": "…", "state": "visible|attached|hidden|detached", "timeoutMs": 5000}
//   {"cmd": "eval", "expr": "document.title"}    (an expression; a promise is awaited)
//   {"cmd": "waitFor", "expr": "…", "timeoutMs": 5000}  (polls every 20 ms until truthy)
//   {"cmd": "screenshot", "path": "/abs/x.png", "fullPage": true}
//   {"cmd": "viewport", "width": 375, "height": 667}
//   {"cmd": "quit"}
// Answer: {"ok": true, "value": …, "at_ms": Date.now() when the step completed} or
// {"ok": false, "error": "…"}. A failed step does not end the session.
// stderr: `drive: chromium pid N` (its process group: the caller kills -N it if this script is
// killed), then the page's console and errors, one line each, prefixed `[page:TYPE]`.
// Bounded: every step has a timeout (default 10 s, max 60 s) and the whole session ends after
// `sessionMs` (default 300 s).
import { chromium } from 'playwright-core';
import readline from 'node:readline';

const HEADLESS_SHELL = '/usr/lib/chromium/chromium-headless-shell';
const cfg = JSON.parse(process.argv[2] ?? '{}');
const sessionMs = Math.min(Number(cfg.sessionMs ?? 300000), 900000);

function log(line) {
  process.stderr.write(`${line}\n`);
}
function answer(obj) {
  process.stdout.write(`${JSON.stringify({ ...obj, at_ms: Date.now() })}\n`);
}
function bound(ms) {
  return Math.min(Math.max(Number(ms ?? 10000), 100), 60000);
}

let chromiumPid = null;
function killChromium() {
  if (chromiumPid) {
    try {
      process.kill(-chromiumPid, 'SIGKILL');
    } catch {
      try {
        process.kill(chromiumPid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
  }
}
const hardStop = setTimeout(() => {
  log('drive: session time over');
  killChromium();
  process.exit(3);
}, sessionMs);

const browser = await chromium.launch({
  executablePath: cfg.executablePath ?? HEADLESS_SHELL,
  args: ['--no-sandbox', '--disable-gpu', '--no-first-run', '--autoplay-policy=no-user-gesture-required'],
  timeout: 30000,
});
try {
  chromiumPid = browser.process()?.pid ?? null;
} catch {
  chromiumPid = null;
}
log(`drive: chromium pid ${chromiumPid}`);
const context = await browser.newContext({
  viewport: cfg.viewport ?? { width: 1280, height: 800 },
});
const page = await context.newPage();
page.on('console', (m) => log(`[page:${m.type()}] ${m.text()}`));
page.on('pageerror', (e) => log(`[page:error] ${e.message}`));

async function step(c) {
  const timeout = bound(c.timeoutMs);
  switch (c.cmd) {
    case 'goto':
      await page.goto(c.url, { timeout, waitUntil: 'load' });
      return null;
    case 'fill':
      await page.fill(c.selector, String(c.value ?? ''), { timeout });
      return null;
    case 'click':
      await page.click(c.selector, { timeout });
      return null;
    case 'press':
      await page.press(c.selector, c.key, { timeout });
      return null;
    case 'wait':
      await page.waitForSelector(c.selector, { state: c.state ?? 'visible', timeout });
      return null;
    case 'eval':
      return await page.evaluate(c.expr);
    case 'waitFor': {
      // Polled from here, not with waitForFunction: that evals a string inside the page, which
      // the console's CSP (no 'unsafe-eval') rightly refuses.
      const until = Date.now() + timeout;
      let last;
      for (;;) {
        try {
          last = await page.evaluate(c.expr);
        } catch (e) {
          last = `error: ${e.message}`;
        }
        if (last && !(typeof last === 'string' && last.startsWith('error: '))) return last;
        if (Date.now() >= until) throw new Error(`waitFor timed out after ${timeout} ms; last value ${JSON.stringify(last)}`);
        await new Promise((r) => setTimeout(r, 20));
      }
    }
    case 'screenshot':
      await page.screenshot({ path: c.path, fullPage: c.fullPage ?? true, timeout });
      return c.path;
    case 'viewport':
      await page.setViewportSize({ width: c.width, height: c.height });
      return null;
    default:
      throw new Error(`unknown cmd ${c.cmd}`);
  }
}

const lines = readline.createInterface({ input: process.stdin });
for await (const line of lines) {
  if (!line.trim()) continue;
  let c;
  try {
    c = JSON.parse(line);
  } catch (e) {
    answer({ ok: false, error: `bad command line: ${e.message}` });
    continue;
  }
  if (c.cmd === 'quit') {
    answer({ ok: true, value: null });
    break;
  }
  try {
    const value = await step(c);
    answer({ ok: true, value: value ?? null });
  } catch (e) {
    answer({ ok: false, error: String(e?.message ?? e).split('\n').slice(0, 6).join(' | ') });
  }
}
clearTimeout(hardStop);
await browser.close().catch(() => {});
killChromium();
process.exit(0);

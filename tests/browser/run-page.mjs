// Opens one page in Debian's headless Chromium (driven by playwright-core, no browser download),
// waits for the page to report a result, prints it, and ends Chromium.
//
//   node run-page.mjs '{"url": "http://127.0.0.1:PORT/page.html", "fakeAudio": "/abs/x.wav", "timeoutMs": 20000}'
//
// Config (one JSON argument):
//   url          page to open (loopback only: the harness serves it)
//   fakeAudio    optional absolute path of a 16-bit PCM WAV: the fake microphone, played once
//                (`%noloop`); without it Chromium's fake device plays its beep
//   timeoutMs    overall bound for the page to report (default 20000, max 300000)
//   resultExpr   JS expression polled every 100 ms until it is neither undefined nor null
//                (default `window.__result`)
//   executablePath  default /usr/lib/chromium/chromium-headless-shell (chromium-headless-shell)
//   extraArgs    more Chromium switches
//
// stdout: exactly one line, `{"ok":true,"result":…,"ms":{…}}` or `{"ok":false,"error":"…",…}`;
// exit status 0 only with ok:true. stderr: `run-page: chromium pid N` (its process group: the
// caller may kill -N it if this script is killed), then the page's console and errors, one line
// each, prefixed `[page:TYPE]`.
import { chromium } from 'playwright-core';

const HEADLESS_SHELL = '/usr/lib/chromium/chromium-headless-shell';

function log(line) {
  process.stderr.write(`${line}\n`);
}

const started = Date.now();
const cfg = JSON.parse(process.argv[2] ?? '{}');
if (typeof cfg.url !== 'string') {
  console.log(JSON.stringify({ ok: false, error: 'config needs "url"' }));
  process.exit(2);
}
const timeoutMs = Math.min(Math.max(Number(cfg.timeoutMs ?? 20000), 1000), 300000);
const resultExpr = cfg.resultExpr ?? 'window.__result';
const args = [
  '--no-sandbox',
  '--disable-gpu',
  '--no-first-run',
  '--use-fake-device-for-media-stream',
  '--use-fake-ui-for-media-stream',
  '--autoplay-policy=no-user-gesture-required',
  '--allow-loopback-in-peer-connection',
  // Host candidates with real addresses, not `….local` mDNS names (Hark is ICE-lite).
  '--disable-features=WebRtcHideLocalIpsWithMdns',
  // Tests serve WSS with a throw-away self-signed certificate.
  '--ignore-certificate-errors',
];
if (cfg.fakeAudio) {
  args.push(`--use-file-for-fake-audio-capture=${cfg.fakeAudio}%noloop`);
}
args.push(...(cfg.extraArgs ?? []));

// Hard stop even if Playwright itself hangs: the whole script is bounded.
let server = null;
let chromiumPid = null;
function killChromium() {
  if (chromiumPid) {
    try {
      process.kill(-chromiumPid, 'SIGKILL'); // its own process group (Playwright spawns it detached)
    } catch {
      try {
        process.kill(chromiumPid, 'SIGKILL');
      } catch {}
    }
  }
}
const hardStop = setTimeout(() => {
  console.log(JSON.stringify({ ok: false, error: `run-page: no result within ${timeoutMs + 15000} ms (hard stop)` }));
  killChromium();
  process.exit(3);
}, timeoutMs + 15000);

let out;
const ms = {};
try {
  server = await chromium.launchServer({
    executablePath: cfg.executablePath ?? HEADLESS_SHELL,
    headless: true,
    args,
    timeout: 30000,
  });
  chromiumPid = server.process().pid;
  log(`run-page: chromium pid ${chromiumPid}`);
  const browser = await chromium.connect(server.wsEndpoint(), { timeout: 30000 });
  ms.launch = Date.now() - started;
  const context = await browser.newContext({ ignoreHTTPSErrors: true });
  const page = await context.newPage();
  page.on('console', (m) => log(`[page:${m.type()}] ${m.text()}`));
  page.on('pageerror', (e) => log(`[page:pageerror] ${e && e.stack ? e.stack : e}`));
  page.on('crash', () => log('[page:crash] renderer crashed'));
  page.on('requestfailed', (r) => log(`[page:requestfailed] ${r.url()} ${r.failure()?.errorText ?? ''}`));

  const deadline = started + timeoutMs;
  await page.goto(cfg.url, { waitUntil: 'load', timeout: Math.max(deadline - Date.now(), 1000) });
  ms.loaded = Date.now() - started;
  let result;
  // Bounded: at most timeoutMs / 100 polls.
  for (let i = 0; i < Math.ceil(timeoutMs / 100) && Date.now() < deadline; i++) {
    result = await page.evaluate(`(() => { const r = (${resultExpr}); return r === undefined ? null : r; })()`);
    if (result !== null) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  ms.result = Date.now() - started;
  if (result === null || result === undefined) {
    out = { ok: false, error: `page reported no result within ${timeoutMs} ms`, ms };
  } else {
    out = { ok: true, result, ms };
  }
  await Promise.race([browser.close().catch(() => {}), new Promise((r) => setTimeout(r, 3000))]);
} catch (e) {
  out = { ok: false, error: String(e && e.stack ? e.stack : e), ms };
}
if (server) {
  await Promise.race([server.close().catch(() => {}), new Promise((r) => setTimeout(r, 3000))]);
}
killChromium();
clearTimeout(hardStop);
console.log(JSON.stringify(out));
process.exit(out.ok ? 0 : 1);

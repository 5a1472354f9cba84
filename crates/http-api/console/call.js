// `#/calls/CA…`: one call's details and its recordings, each with a waveform player
// (wavesurfer.js; two lanes for a dual-channel recording), downloads, delete, and the
// transcript whose utterances seek the player.

import WaveSurfer from './vendor/wavesurfer.esm.js';
import TimelinePlugin from './vendor/plugins/timeline.esm.js';
import { request, accountPath } from './api.js';
import { h, timeEl, formatDuration, announce, confirmAction } from './ui.js';

const MAX_RECORDING_PAGES = 20;
const LANE_HEIGHT_DUAL = 56; // app.css places the lane labels for this height
const LANE_HEIGHT_MONO = 80;
const LANE_NAMES = ['caller', 'called'];
// Recordings whose audio is final; others have no player (yet).
const PLAYABLE = new Set(['completed']);

export async function renderCall(ctx) {
  const [sid] = ctx.params;
  const heading = h('h1', null, 'Call ', h('span', { class: 'sid' }, sid));
  const details = h('dl', { id: 'call-details', class: 'details' });
  const recHeading = h('h2', { id: 'recordings-heading', tabindex: '-1' }, 'Recordings');
  const recList = h('div', { class: 'recordings' });
  ctx.main.append(
    h('p', { class: 'back' }, h('a', { href: '#/calls' }, '← All calls')),
    heading, details, recHeading, recList,
  );

  const callUri = accountPath(`/Calls/${encodeURIComponent(sid)}.json`);
  const recUri = accountPath(`/Calls/${encodeURIComponent(sid)}/Recordings.json`);
  const [callResult, recResult] = await Promise.allSettled([
    request('GET', callUri, { signal: ctx.signal }),
    allRecordings(recUri, ctx.signal),
  ]);
  if (!ctx.isCurrent()) return;

  if (callResult.status === 'fulfilled') {
    fillDetails(details, callResult.value);
  } else {
    ctx.fail(`Loading call ${sid} failed`, callResult.reason);
    details.append(h('dt', null, 'Error'), h('dd', null, callResult.reason.message || 'could not load the call'));
  }

  if (recResult.status === 'rejected') {
    ctx.fail(`Loading the recordings of call ${sid} failed`, recResult.reason);
    recList.append(h('p', { class: 'empty-note' }, 'Could not load the recordings.'));
    ctx.ready();
    return;
  }
  const recordings = recResult.value;
  if (recordings.length === 0) {
    recList.append(h('p', { class: 'empty-note' }, 'This call has no recordings.'));
    ctx.ready();
    return;
  }
  // Oldest first: the order they were made during the call.
  recordings.sort((a, b) => Date.parse(a.start_time || a.date_created) - Date.parse(b.start_time || b.date_created));
  const loaded = recordings.map((rec) => {
    const section = recordingSection(ctx, rec, recHeading, recList);
    recList.append(section.el);
    return section.loadTranscript();
  });
  await Promise.allSettled(loaded);
  ctx.ready();
}

async function allRecordings(firstUri, signal) {
  const all = [];
  let uri = firstUri;
  for (let i = 0; uri && i < MAX_RECORDING_PAGES; i++) {
    const body = await request('GET', uri, { signal });
    all.push(...((body && body.recordings) || []));
    uri = body && body.next_page_uri;
  }
  return all;
}

function fillDetails(dl, call) {
  const row = (label, field, value) => [
    h('dt', null, label),
    h('dd', { dataset: { field } }, value === null || value === undefined || value === '' ? '—' : value),
  ];
  dl.replaceChildren(
    ...row('From', 'from', call.from),
    ...row('To', 'to', call.to),
    ...row('Status', 'status', call.status),
    ...row('Direction', 'direction', call.direction),
    ...row('Start', 'start', timeEl(call.start_time)),
    ...row('End', 'end', timeEl(call.end_time)),
    ...row('Duration', 'duration', formatDuration(call.duration)),
    ...(call.parent_call_sid
      ? row('Parent call', 'parent', h('a', { href: `#/calls/${call.parent_call_sid}` }, call.parent_call_sid))
      : []),
  );
}

function recordingSection(ctx, rec, recHeading, recList) {
  const sid = rec.sid;
  const channels = Number(rec.channels) || 1;
  const base = accountPath(`/Recordings/${encodeURIComponent(sid)}`);
  const headingId = `rec-${sid}`;
  const playable = PLAYABLE.has(rec.status);

  const time = h('span', { class: 'time' }, `0:00 / ${formatDuration(rec.duration)}`);
  const playButton = h('button', {
    type: 'button', class: 'play', dataset: { action: 'play' }, 'aria-pressed': 'false',
    'aria-label': `Play recording ${sid}`, disabled: true,
  }, h('span', { class: 'icon', 'aria-hidden': 'true' }, '▶'), ' Play');
  const back = h('button', { type: 'button', dataset: { action: 'back' }, 'aria-label': 'Back 5 seconds', disabled: true }, '−5 s');
  const forward = h('button', { type: 'button', dataset: { action: 'forward' }, 'aria-label': 'Forward 5 seconds', disabled: true }, '+5 s');
  const deleteButton = h('button', {
    type: 'button', class: 'danger', dataset: { action: 'delete' }, 'aria-label': `Delete recording ${sid}`,
  }, 'Delete');
  const playerNote = h('p', { class: 'player-note', hidden: true });
  const waveform = h('div', { class: 'waveform', role: 'img', 'aria-label': waveLabel(channels, sid) });
  const lanes = h('div', { class: `waveform-wrap${channels > 1 ? ' dual' : ''}` }, waveform,
    channels > 1
      ? LANE_NAMES.map((name, i) => h('span', { class: `lane-label lane-${i + 1}`, 'aria-hidden': 'true' }, name))
      : null);

  const transcriptBox = h('div', { class: 'transcript-box' });
  const el = h('section', { class: 'recording', dataset: { recordingSid: sid }, 'aria-labelledby': headingId },
    h('h3', { id: headingId },
      h('span', { class: 'sid' }, sid),
      h('span', { class: 'meta' },
        ` · ${formatDuration(rec.duration)} · ${channels === 1 ? '1 channel' : `${channels} channels`} · ${rec.status || ''}`)),
    h('p', { class: 'rec-info' }, 'Created ', timeEl(rec.date_created), rec.source ? ` · ${rec.source}` : ''),
    playable ? lanes : null,
    playerNote,
    h('div', { class: 'controls' },
      playable ? h('div', { class: 'button-row' }, playButton, back, forward, time) : null,
      h('div', { class: 'button-row downloads' },
        playable ? h('a', { href: `${base}.wav`, download: `${sid}.wav`, dataset: { format: 'wav' } }, 'Download WAV') : null,
        playable ? h('a', { href: `${base}.mp3`, download: `${sid}.mp3`, dataset: { format: 'mp3' } }, 'Download MP3') : null,
        deleteButton)),
    h('h4', null, 'Transcript'),
    transcriptBox,
  );

  let ws = null;
  let ready = false;
  let pendingStart = null;
  let utterances = []; // { start, end, li, button }
  let currentUtterance = null;

  const setNote = (text, error = false) => {
    playerNote.textContent = text;
    playerNote.hidden = !text;
    playerNote.classList.toggle('error', error);
  };

  if (!playable) {
    setNote(rec.status === 'in-progress' || rec.status === 'paused' || rec.status === 'stopped' || rec.status === 'processing'
      ? `This recording is ${rec.status}; its audio can be played once it is completed.`
      : `This recording is ${rec.status || 'not available'}; there is no audio to play.`);
  } else {
    setNote('Loading audio…');
    ws = WaveSurfer.create({
      container: waveform,
      url: `${base}.wav`,
      height: channels > 1 ? LANE_HEIGHT_DUAL : LANE_HEIGHT_MONO,
      waveColor: '#6e7781',
      progressColor: '#0550ae',
      cursorColor: '#b42318',
      cursorWidth: 2,
      mediaControls: false,
      dragToSeek: true,
      autoScroll: true,
      splitChannels: channels > 1
        ? [{ waveColor: '#4f7a5a', progressColor: '#1a5e2f' }, { waveColor: '#7d5ba6', progressColor: '#4b2c7a' }]
        : undefined,
      plugins: [TimelinePlugin.create({
        height: 20,
        formatTimeCallback: (s) => formatDuration(s),
        secondaryLabelOpacity: 1,
        style: { color: '#424a53' },
      })],
    });
    ws.on('ready', (duration) => {
      if (!ctx.isCurrent()) return;
      ready = true;
      window.__console.players[sid] = ws;
      el.dataset.ready = '1';
      playButton.disabled = false;
      back.disabled = false;
      forward.disabled = false;
      setNote('');
      time.textContent = `${formatDuration(ws.getCurrentTime())} / ${formatDuration(duration)}`;
      if (pendingStart !== null) {
        const start = pendingStart;
        pendingStart = null;
        seekAndPlay(start);
      }
    });
    ws.on('play', () => setPlaying(true));
    ws.on('pause', () => setPlaying(false));
    ws.on('finish', () => setPlaying(false));
    ws.on('timeupdate', (t) => {
      time.textContent = `${formatDuration(t)} / ${formatDuration(ws.getDuration())}`;
      highlight(t);
    });
    ws.on('error', (err) => {
      if (!ctx.isCurrent()) return;
      const message = err && err.message ? err.message : String(err);
      setNote(`The audio could not be loaded: ${message}`, true);
      announce(`Recording ${sid}: the audio could not be loaded: ${message}`, 'error');
      // The media fetch bypasses api.js: a lapsed session shows here first.
      if (/\b401\b/.test(message)) request('GET', '/console/api/session', { signal: ctx.signal }).catch(() => {});
    });
    ctx.onCleanup(destroyPlayer);
  }

  function destroyPlayer() {
    if (ws) {
      try {
        ws.destroy();
      } catch (err) {
        console.error('console: destroying the player failed', err);
      }
    }
    ws = null;
    ready = false;
    if (window.__console.players[sid]) delete window.__console.players[sid];
  }

  function setPlaying(playing) {
    playButton.setAttribute('aria-pressed', playing ? 'true' : 'false');
    playButton.querySelector('.icon').textContent = playing ? '❚❚' : '▶';
  }

  function seekAndPlay(start) {
    if (!ws) return;
    ws.setTime(start);
    highlight(start);
    ws.play().catch((err) => announce(`Recording ${sid}: playback failed: ${err.message || err}`, 'error'));
  }

  playButton.addEventListener('click', () => {
    if (!ws || !ready) return;
    ws.playPause().catch((err) => announce(`Recording ${sid}: playback failed: ${err.message || err}`, 'error'));
  });
  back.addEventListener('click', () => ws && ready && ws.skip(-5));
  forward.addEventListener('click', () => ws && ready && ws.skip(5));

  deleteButton.addEventListener('click', async () => {
    const ok = await confirmAction(
      `Delete recording ${sid}? Its audio and transcript are removed for good.`, 'Delete recording');
    if (!ok || !ctx.isCurrent()) return;
    deleteButton.disabled = true;
    try {
      await request('DELETE', `${base}.json`, { signal: ctx.signal });
    } catch (err) {
      deleteButton.disabled = false;
      ctx.fail(`Deleting recording ${sid} failed`, err);
      return;
    }
    if (!ctx.isCurrent()) return;
    destroyPlayer();
    el.remove();
    if (!recList.querySelector('section.recording')) {
      recList.append(h('p', { class: 'empty-note' }, 'This call has no recordings.'));
    }
    recHeading.focus();
    announce(`Recording ${sid} deleted.`);
  });

  function highlight(t) {
    let found = null;
    for (const u of utterances) {
      if (t + 0.05 >= u.start && t < u.end) found = u; // the latest-starting one that covers t
    }
    if (found === currentUtterance) return;
    if (currentUtterance) {
      currentUtterance.li.removeAttribute('aria-current');
      currentUtterance.button.removeAttribute('aria-current');
    }
    currentUtterance = found;
    if (found) {
      found.li.setAttribute('aria-current', 'true');
      found.button.setAttribute('aria-current', 'true');
    }
  }

  async function loadTranscript() {
    transcriptBox.replaceChildren(h('p', { class: 'muted' }, 'Loading the transcript…'));
    let body;
    try {
      body = await request('GET', `/console/api/recordings/${encodeURIComponent(sid)}/transcript`, { signal: ctx.signal });
    } catch (err) {
      if (!ctx.isCurrent()) return;
      ctx.fail(`Loading the transcript of ${sid} failed`, err);
      transcriptBox.replaceChildren(h('p', { class: 'error-note' }, `The transcript could not be loaded: ${err.message}`));
      return;
    }
    if (!ctx.isCurrent()) return;
    renderTranscript(body || {});
  }

  function renderTranscript(body) {
    const status = body.status || 'none';
    const children = [];
    if (status !== 'completed') {
      children.push(h('p', { class: 'transcript-line' }, 'Transcript status: ',
        h('span', { class: 'transcript-status' }, status), statusHint(status)));
      if (body.error) children.push(h('p', { class: 'error-note transcript-error' }, body.error));
      if (status === 'queued' || status === 'in-progress') {
        children.push(h('button', { type: 'button', class: 'refresh-transcript', onClick: () => loadTranscript() },
          'Check the transcript again'));
      }
    }
    const list = (body.utterances || []).slice()
      .filter((u) => u && Number.isFinite(Number(u.start_sec)))
      .sort((a, b) => Number(a.start_sec) - Number(b.start_sec));
    utterances = [];
    currentUtterance = null;
    if (status === 'completed' || list.length) {
      const ol = h('ol', { class: 'transcript', 'aria-label': `Transcript of recording ${sid}` });
      list.forEach((u, i) => {
        const start = Number(u.start_sec);
        const duration = Number(u.duration_sec) || 0;
        const nextStart = i + 1 < list.length ? Number(list[i + 1].start_sec) : Infinity;
        const end = duration > 0 ? start + duration : Math.max(nextStart, start + 0.5);
        const speaker = u.speaker || 'speaker';
        const button = h('button', { type: 'button', dataset: { start: String(start) } },
          h('span', { class: 'speaker', dataset: { speaker } }, speaker),
          h('span', { class: 'ts' }, formatDuration(start)),
          h('span', { class: 'text' }, u.text || ''));
        button.addEventListener('click', () => {
          if (!ws) {
            announce(`Recording ${sid} has no audio to play.`, 'error');
            return;
          }
          if (ready) seekAndPlay(start);
          else pendingStart = start; // played as soon as the audio is ready
        });
        const li = h('li', { class: 'utterance', dataset: { speaker } }, button);
        ol.append(li);
        utterances.push({ start, end, li, button });
      });
      children.push(ol);
      if (list.length === 0) children.push(h('p', { class: 'muted' }, 'No speech was found in this recording.'));
    }
    transcriptBox.replaceChildren(...children);
    if (ws && ready) highlight(ws.getCurrentTime());
  }

  return { el, loadTranscript };
}

function statusHint(status) {
  switch (status) {
    case 'none': return ' (this recording has not been transcribed)';
    case 'queued': return ' (waiting for the transcription engine)';
    case 'in-progress': return ' (being transcribed)';
    case 'failed': return ' (the transcription failed)';
    default: return '';
  }
}

function waveLabel(channels, sid) {
  return channels > 1
    ? `Waveform of recording ${sid}: two lanes, the caller on top and the called party below`
    : `Waveform of recording ${sid}`;
}

// The web demo: a shipped Titans model in the page. Plant a fact far beyond the attention window,
// ask for it, and draw what the memory did token by token (model.inspect). A Web Worker trains a
// tiny pass-key model on this machine (train-worker.js). Everything here uses the library's
// high-level API from the built package (dist/src).
import * as titans from '../dist/src/index.js';
import { chooseBackend, needleSentence } from './shared.js';

const { loadModel, modelFromFiles, RULER_FILLER } = titans;
const $ = (id) => document.getElementById(id);

/** What the page holds: the loaded model, the trained one, where the planted fact is, the last inspection. */
const page = {
  model: null,
  /** Loaded models by name, so switching back costs nothing. */
  models: new Map(),
  planted: null, // { offset, length, key }
  inspection: null,
  questionStart: 0,
  worker: null,
};

function setStatus(text) {
  $('status').textContent = text;
}

async function start() {
  const backend = await chooseBackend();
  $('train-backend').textContent = backend;
  setStatus(
    `backend ${backend} · cross-origin isolated: ${globalThis.crossOriginIsolated === true} · ${navigator.hardwareConcurrency ?? '?'} cores`,
  );
  page.backend = backend;
  for (const id of ['fill-filler', 'fill-generated', 'plant', 'ask', 'load-model', 'train'])
    $(id).disabled = true;
  await selectModel($('model-select').value);
  fillFiller();
  plant();
  for (const id of ['fill-filler', 'fill-generated', 'plant', 'ask', 'load-model', 'train'])
    $(id).disabled = false;
  setStatus(`${$('status').textContent} · ready`);
}

async function getModel(name) {
  if (!page.models.has(name)) page.models.set(name, await loadModel(name));
  return page.models.get(name);
}

async function selectModel(name) {
  $('model-info').textContent = `loading ${name}…`;
  const started = performance.now();
  page.model = await getModel(name);
  const { config } = page.model;
  $('model-info').textContent = `${String(page.model)} · loaded in ${((performance.now() - started) / 1000).toFixed(1)} s`;
  $('question').value = name === 'sotu-mag' ? 'The pass key is ' : $('question').value;
  describeText();
  return config;
}

/** Attention reaches layers · (window − 1) tokens back from a token (each layer one window further). */
function attentionReach(config) {
  return config.layers * (config.window - 1);
}

function describeText() {
  if (!page.model) return;
  const n = page.model.tokenizer.encode($('text').value).length;
  $('text-info').textContent = `${n} tokens · attention reaches ${attentionReach(page.model.config)} tokens back; the memory, everything`;
}

function fillFiller() {
  const length = Number($('length').value);
  $('text').value = RULER_FILLER.repeat(Math.ceil(length / RULER_FILLER.length)).slice(0, length).trimEnd();
  page.planted = null;
  $('fact-info').textContent = '';
  describeText();
}

async function fillGenerated() {
  const length = Number($('length').value);
  $('fill-generated').disabled = true;
  const writer = await getModel('sotu-mag');
  $('text').value = '';
  page.planted = null;
  let text = '';
  await writer.generate('Fellow-Citizens of the Senate and House of Representatives: ', {
    maxNewTokens: length,
    temperature: 0.8,
    topK: 40,
    repetitionPenalty: 1.1,
    seed: Math.floor(Math.random() * 1e6),
    onText: (piece) => {
      text += piece;
      $('text').value = text;
      $('text-info').textContent = `generating… ${text.length} / ${length}`;
    },
  });
  $('fill-generated').disabled = false;
  describeText();
}

/** Puts the pass-key sentence at the sentence start nearest to the chosen depth. */
function plant() {
  let text = $('text').value;
  if (page.planted) {
    // Take the previous fact out first.
    const { offset, length } = page.planted;
    text = text.slice(0, offset) + text.slice(offset + length);
  }
  const key = ($('key').value || '7').slice(0, 1);
  const needle = needleSentence(key);
  const target = Math.round((Number($('depth').value) / 100) * text.length);
  let offset = 0;
  for (let d = 0; d < text.length; d++) {
    const before = (i) => i === 0 || (text[i - 1] === ' ' && '.!?'.includes(text[i - 2] ?? ''));
    if (target - d >= 0 && before(target - d)) {
      offset = target - d;
      break;
    }
    if (target + d <= text.length && before(target + d)) {
      offset = target + d;
      break;
    }
  }
  $('text').value = text.slice(0, offset) + needle + text.slice(offset);
  page.planted = { offset, length: needle.length, key };
  const after = page.model ? page.model.tokenizer.encode($('text').value.slice(offset + needle.length)).length : 0;
  $('fact-info').textContent = `planted at character ${offset}; ${after} tokens between it and the question`;
  describeText();
}

/** The k most likely next tokens, as text: '7' 0.93 · '3' 0.02 … */
function formatTop(top) {
  return top.map((t) => `<code>${escapeHtml(JSON.stringify(t.text))}</code> ${t.probability.toFixed(2)}`).join(' · ');
}

function escapeHtml(s) {
  return s.replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c]);
}

async function ask() {
  const model = page.model;
  const context = $('text').value;
  const question = `\n${$('question').value}`;
  $('ask').disabled = true;
  $('answers').innerHTML = 'reading…';
  const started = performance.now();
  // With the memory: the whole text, then the question.
  const session = model.session();
  await session.read(context + question);
  const top = session.nextTokens(3);
  const answer = await session.generate({ maxNewTokens: 8, temperature: 0, stop: ['.', '\n'] });
  session.close();
  // The same, but the memory is wiped just before the question: attention still sees its window.
  const wiped = model.session();
  await wiped.read(context);
  wiped.resetMemory();
  await wiped.read(question);
  const topWiped = wiped.nextTokens(3);
  wiped.close();
  const seconds = (performance.now() - started) / 1000;
  const expected = page.planted?.key;
  const right = expected !== undefined && top[0].text === expected;
  $('answers').innerHTML = `
    <div class="answer ${right ? 'right' : ''}" id="answer-memory">
      <b>With its memory:</b> <span class="big" id="answer-text">${escapeHtml(top[0].text)}</span>
      <span class="info">next-token probabilities ${formatTop(top)} · greedy continuation <code>${escapeHtml(JSON.stringify(answer))}</code></span></div>
    <div class="answer" id="answer-wiped"><b>Memory wiped before the question</b> (attention unchanged):
      <span class="big">${escapeHtml(topWiped[0].text)}</span>
      <span class="info">${formatTop(topWiped)}</span></div>
    <div class="info">${expected === undefined ? '' : `planted key: ${escapeHtml(expected)} · `}read ${model.tokenizer.encode(context + question).length} tokens twice in ${seconds.toFixed(1)} s</div>`;
  page.questionStart = model.tokenizer.encode(context).length;
  page.inspection = await model.inspect(context + question);
  drawStrips();
  drawTokens();
  $('ask').disabled = false;
}

/** Token index range [from, to) of a character range of the text (byte-level: chars → UTF-8 bytes). */
function tokenRange(text, from, to) {
  const encode = (s) => page.model.tokenizer.encode(s).length;
  return [encode(text.slice(0, from)), encode(text.slice(0, to))];
}

function rows(inspection) {
  const mean = (perHead, t) => perHead.reduce((a, h) => a + h[t], 0) / perHead.length;
  const T = inspection.tokens.length;
  const out = [{ label: 'model loss (nats)', values: inspection.loss.map((v) => (Number.isFinite(v) ? v : 0)) }];
  for (const m of inspection.memory) {
    m.surprise.forEach((h, i) => out.push({ label: `layer ${m.layer} head ${i}: surprise ‖∇ℓ‖`, values: h }));
    out.push({ label: `layer ${m.layer}: recall error`, values: Array.from({ length: T }, (_, t) => mean(m.recallError, t)) });
    out.push({ label: `layer ${m.layer}: θ (write)`, values: Array.from({ length: T }, (_, t) => mean(m.theta, t)) });
    out.push({ label: `layer ${m.layer}: α (forget)`, values: Array.from({ length: T }, (_, t) => mean(m.alpha, t)) });
    out.push({ label: `layer ${m.layer}: η (momentum)`, values: Array.from({ length: T }, (_, t) => mean(m.eta, t)) });
  }
  return out;
}

function drawStrips() {
  const inspection = page.inspection;
  const canvas = $('strips');
  const strips = rows(inspection);
  const rowHeight = 18;
  const labelWidth = 230;
  const valueWidth = 96;
  canvas.height = strips.length * rowHeight + 26;
  const ctx = canvas.getContext('2d');
  const width = canvas.width - labelWidth - valueWidth;
  const T = inspection.tokens.length;
  const x = (t) => labelWidth + (t / T) * width;
  ctx.clearRect(0, 0, canvas.width, canvas.height);
  ctx.font = '12px system-ui, sans-serif';
  strips.forEach((row, r) => {
    const y = 20 + r * rowHeight;
    // Each strip spans its own range, min (white) to max (dark).
    const min = Math.min(...row.values);
    const max = Math.max(...row.values);
    const span = Math.max(1e-12, max - min);
    for (let t = 0; t < T; t++) {
      const v = (row.values[t] - min) / span;
      ctx.fillStyle = `rgba(200, 70, 20, ${v.toFixed(3)})`;
      ctx.fillRect(x(t), y, Math.max(1, width / T), rowHeight - 3);
    }
    ctx.fillStyle = '#222';
    ctx.fillText(row.label, 4, y + 12);
    ctx.fillText(`${min.toPrecision(2)}–${max.toPrecision(2)}`, labelWidth + width + 6, y + 12);
  });
  // What attention can reach from the question's last token, the question, and the planted fact.
  const reach = attentionReach(page.model.config);
  const top = 16;
  const height = strips.length * rowHeight + 6;
  ctx.fillStyle = 'rgba(40, 90, 220, 0.18)';
  ctx.fillRect(x(Math.max(0, T - 1 - reach)), top, x(T) - x(Math.max(0, T - 1 - reach)), height);
  ctx.fillStyle = '#2850c8';
  ctx.fillText('attention window', Math.max(labelWidth, x(T - 1 - reach)), 12);
  if (page.planted) {
    const [from, to] = tokenRange($('text').value, page.planted.offset, page.planted.offset + page.planted.length);
    ctx.strokeStyle = '#119944';
    ctx.lineWidth = 2;
    ctx.strokeRect(x(from), top, Math.max(2, x(to) - x(from)), height);
    ctx.fillStyle = '#119944';
    ctx.fillText('planted fact', x(from), 12);
  }
}

function drawTokens() {
  const { tokens, memory } = page.inspection;
  const T = tokens.length;
  const surprise = Array.from({ length: T }, (_, t) =>
    memory.reduce((a, m) => a + m.surprise.reduce((b, h) => b + h[t], 0), 0),
  );
  const max = Math.max(1e-12, ...surprise);
  const reachFrom = T - 1 - attentionReach(page.model.config);
  const [from, to] = page.planted
    ? tokenRange($('text').value, page.planted.offset, page.planted.offset + page.planted.length)
    : [-1, -1];
  const view = $('token-view');
  view.textContent = '';
  const fragment = document.createDocumentFragment();
  tokens.forEach((token, t) => {
    const span = document.createElement('span');
    span.textContent = token.text;
    span.style.backgroundColor = `rgba(200, 70, 20, ${(surprise[t] / max).toFixed(3)})`;
    if (t >= reachFrom) span.className = 'in-window';
    if (t >= from && t < to) span.classList.add('fact');
    span.title = `token ${t} · memory surprise ${surprise[t].toFixed(3)} · model loss ${Number.isFinite(page.inspection.loss[t]) ? page.inspection.loss[t].toFixed(2) : '–'} nats`;
    fragment.append(span);
  });
  view.append(fragment);
}

function train() {
  const steps = Number($('train-steps').value);
  $('train').disabled = true;
  $('stop-train').disabled = false;
  $('train-progress').value = 0;
  $('train-info').textContent = 'starting the worker…';
  const worker = new Worker(new URL('./train-worker.js', import.meta.url), { type: 'module' });
  page.worker = worker;
  worker.onmessage = async ({ data }) => {
    if (data.type === 'progress') {
      $('train-progress').value = data.step / data.steps;
      $('train-info').textContent = `step ${data.step} / ${data.steps} · loss ${data.loss.toFixed(3)} (chance ${Math.log(10).toFixed(2)}) · ${Math.round(data.tokensPerSecond)} tokens/s`;
    } else if (data.type === 'done') {
      const model = await modelFromFiles(data.files, 'trained in this page');
      page.models.set('yours', model);
      if (![...$('model-select').options].some((o) => o.value === 'yours')) {
        const option = new Option(`your model: trained here (${data.steps} steps)`, 'yours');
        $('model-select').add(option);
      }
      $('train-progress').value = 1;
      $('train-info').textContent = `done: ${data.steps} steps in ${data.seconds.toFixed(0)} s, final loss ${data.loss.toFixed(3)} · recall on 50 new examples: ${data.recall.toFixed(2)} (chance 0.10) · pick “your model” above`;
      finishTraining();
    } else if (data.type === 'error') {
      $('train-info').textContent = `error: ${data.message}`;
      finishTraining();
    }
  };
  worker.postMessage({ type: 'train', steps });
}

function finishTraining() {
  page.worker?.terminate();
  page.worker = null;
  $('train').disabled = false;
  $('stop-train').disabled = true;
}

$('load-model').addEventListener('click', () => selectModel($('model-select').value));
$('fill-filler').addEventListener('click', fillFiller);
$('fill-generated').addEventListener('click', fillGenerated);
$('plant').addEventListener('click', plant);
$('ask').addEventListener('click', ask);
$('train').addEventListener('click', train);
$('stop-train').addEventListener('click', () => page.worker?.postMessage({ type: 'stop' }));
$('text').addEventListener('input', () => {
  page.planted = null;
  describeText();
});
$('depth').addEventListener('input', () => {
  $('depth-value').textContent = `${$('depth').value} %`;
});

start().catch((e) => {
  setStatus(`error: ${e?.message ?? e}`);
  console.error(e);
});

// Trains the tiny pass-key model in a Web Worker (the page stays responsive): a MAG model with a
// window of 8 tokens learns to recall a 1-digit pass key planted beyond that window. Posts
// progress, then the trained model's files (config.json, model.safetensors, tokenizer.json).
import * as titans from '../dist/src/index.js';
import { chooseBackend } from './shared.js';

/** The model and task: the tiny preset's size, rows of 96 tokens, every key beyond the window. */
const SEQ_LEN = 96;
const MODEL = {
  variant: 'mag',
  dModel: 16,
  layers: 2,
  heads: 2,
  window: 8,
  segmentSize: 8,
  persistentTokens: 2,
  memory: { heads: 2, headDim: 8, expansion: 2, chunkSize: 4 },
};

let stopped = false;

self.onmessage = async ({ data }) => {
  if (data.type === 'stop') {
    stopped = true;
    return;
  }
  try {
    await chooseBackend('wasm');
    const depth = titans.maxDepthBeyondWindow(SEQ_LEN, MODEL);
    const task = titans.shallowNeedles(titans.passkeyTask({ digits: 1, cue: 'recall' }), depth);
    const started = performance.now();
    let last = { loss: Number.NaN, step: 0 };
    const model = await titans.train({
      preset: { model: MODEL, train: {} },
      data: task,
      steps: data.steps,
      seqLen: SEQ_LEN,
      batchSize: 8,
      lr: 0.005,
      warmupSteps: 20,
      evalEvery: 0,
      signal: { get aborted() { return stopped; } },
      onProgress: (p) => {
        last = p;
        self.postMessage({ type: 'progress', ...p });
      },
    });
    const seconds = (performance.now() - started) / 1000;
    const evaluation = await titans.evaluateTask(model.params, model.config, model.tokenizer, task, {
      lengths: [SEQ_LEN],
      examples: 50,
      rng: new titans.Rng(1),
    });
    const files = await model.files();
    self.postMessage(
      { type: 'done', files, steps: last.step, loss: last.loss, seconds, recall: evaluation.results[0].accuracy },
      [files.weights.buffer],
    );
  } catch (e) {
    self.postMessage({ type: 'error', message: String(e?.message ?? e) });
  }
};

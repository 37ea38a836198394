/**
 * The high-level API: loading from every kind of source, generation (streamed text equals the
 * resolved text, seeded sampling repeats, continuing is exact), sessions (saved state resumes
 * exactly, closing frees it, wiping the memory changes the answer), scoring (windowed = streamed
 * over one window; the tail counts), the memory inspection against autodiff, training with
 * progress and cancellation, tensors from nested arrays.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { inspect as nodeInspect } from 'node:util';
import {
  add,
  dispose,
  grad,
  keep,
  loadModel,
  memory,
  modelFromFiles,
  passkeyTask,
  Rng,
  reshape,
  setThreads,
  slice,
  sqrt,
  square,
  stack,
  sub,
  sum,
  type Tensor,
  TextStream,
  TitansModel,
  tensor,
  train,
  withBackend,
} from '../../src/index.js';
import { parseSafetensors, serializeSafetensors } from '../../src/io/safetensors.js';
import { memoryLayerWrites } from '../../src/memory/layer.js';
import { memoryForward } from '../../src/memory/memory-mlp.js';
import { memoryLayerConfigOf } from '../../src/models/config.js';
import { initModel } from '../../src/models/model.js';
import { modelStream } from '../../src/models/stream.js';
import { byteTokenizer } from '../../src/tokenizer/tokenizer.js';
import { tinyConfig } from '../models/util.js';

let root: string;
before(async () => {
  await setThreads(1);
  root = await mkdtemp(join(tmpdir(), 'titans-api-'));
});
after(async () => {
  await rm(root, { recursive: true, force: true });
});

/** A small random byte-level model of a variant (d = 8, window 4, memory chunks of 2). */
function byteModel(variant: 'mag' | 'mac' | 'lmm' | 'swa' = 'mag', seed = 1): TitansModel {
  const config = tinyConfig(variant, { vocabSize: 256 });
  return new TitansModel(config, initModel(config, new Rng(seed)), byteTokenizer());
}

describe('loadModel', () => {
  it('loads a saved directory, its files as bytes, text or blobs, and a URL; all generate alike', async () => {
    const model = byteModel('mac');
    const dir = join(root, 'saved');
    await model.save(dir);
    const config = JSON.parse(await readFile(join(dir, 'config.json'), 'utf8'));
    assert.equal(config.model_type, 'titans');
    assert.deepEqual(config.architectures, ['TitansForCausalLM']);
    const greedy = { maxNewTokens: 12, temperature: 0 };
    const want = await model.generate('memory', greedy);
    const files = await model.files();
    const server = createServer(async (req, res) => {
      try {
        res.end(await readFile(join(dir, req.url!.split('/').pop()!)));
      } catch {
        res.writeHead(404).end();
      }
    });
    await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
    const port = (server.address() as { port: number }).port;
    try {
      const sources = [
        await loadModel(dir),
        await loadModel({ config: files.config, weights: files.weights, tokenizer: files.tokenizer }),
        await loadModel({
          config: JSON.parse(files.config),
          weights: new Blob([files.weights]),
          tokenizer: new Blob([files.tokenizer]),
        }),
        await loadModel(`http://127.0.0.1:${port}/saved/`),
      ];
      for (const loaded of sources) {
        assert.equal(await loaded.generate('memory', greedy), want);
        loaded.dispose();
      }
    } finally {
      server.close();
    }
    model.dispose();
  });

  it('loads a config.json without model_type (older files); refuses another model_type and bad weights by name', async () => {
    const model = byteModel();
    const files = await model.files();
    const old = JSON.parse(files.config);
    delete old.model_type;
    delete old.architectures;
    (await loadModel({ config: old, weights: files.weights })).dispose();
    await assert.rejects(
      loadModel({ config: { ...old, model_type: 'llama' }, weights: files.weights }),
      /<files>\/config\.json: config: model_type is 'llama', not 'titans'/,
    );
    await assert.rejects(
      loadModel({ config: { ...old, dModel: 16 }, weights: files.weights }),
      /model\.safetensors: tensor "embedding" has shape \[256, 8\], expected \[256, 16\]/,
    );
    await assert.rejects(
      loadModel(join(root, 'nowhere', 'model')),
      /nowhere\/model: not found \(expected a run folder or a checkpoint directory\)/,
    );
    await assert.rejects(loadModel('no-such-model'), /neither a checkpoint directory nor a shipped model/);
    model.dispose();
  });

  it('refuses weights that are not finite unless allowNonFinite, and a missing tokenizer that bytes cannot stand in for', async () => {
    const model = byteModel();
    const files = await model.files();
    const { tensors } = parseSafetensors(files.weights);
    tensors.embedding!.data[3] = Number.NaN;
    const weights = serializeSafetensors(tensors);
    await assert.rejects(
      loadModel({ config: files.config, weights }),
      /<files>\/model\.safetensors: 1 non-finite value \(1 NaN, 0 ±Infinity\) in 1 tensor: "embedding" \(1, first at index 3\); refusing/,
    );
    const allowed = await loadModel({ config: files.config, weights }, { allowNonFinite: true });
    assert.ok(Number.isNaN((await allowed.params.embedding.data())[3]!));
    allowed.dispose();
    const bpe = { ...JSON.parse(files.config), vocabSize: 300 };
    await assert.rejects(
      loadModel({ config: bpe, weights: files.weights }),
      /<files>\/tokenizer\.json: missing, and the model's vocabulary has 300 tokens, not the byte tokenizer's 256/,
    );
    model.dispose();
  });
});

describe('generation', () => {
  it('streams exactly the text it resolves to; a seed repeats a sample; top-p near 0 is greedy', async () => {
    const model = byteModel();
    const pieces: string[] = [];
    const text = await model.generate('The ', { maxNewTokens: 40, seed: 7, onText: (p) => pieces.push(p) });
    assert.equal(pieces.join(''), text);
    assert.equal(await model.generate('The ', { maxNewTokens: 40, seed: 7 }), text);
    let streamed = '';
    for await (const piece of model.stream('The ', { maxNewTokens: 40, seed: 7 })) streamed += piece;
    assert.equal(streamed, text);
    assert.equal(
      await model.generate('The ', { maxNewTokens: 20, seed: 3, topP: 1e-9 }),
      await model.generate('The ', { maxNewTokens: 20, temperature: 0 }),
    );
    await assert.rejects(model.generate('The ', { topP: 0 }), /topP must be in \(0, 1\]/);
    await assert.rejects(model.generate('The ', { repetitionPenalty: -1 }), /repetitionPenalty must be > 0/);
    model.dispose();
  });

  it('continues exactly: n tokens at once = k tokens, then n − k from the same session, or from its saved state', async () => {
    for (const variant of ['mag', 'mac', 'lmm', 'swa'] as const) {
      const model = byteModel(variant, 3);
      const greedy = (n: number) => ({ maxNewTokens: n, temperature: 0 });
      const whole = await model.generate('Recall ', greedy(14));
      const session = model.session();
      const first = await session.generate('Recall ', greedy(5));
      const saved = await session.saveState();
      const rest = await session.generate(greedy(9));
      assert.equal(session.position, 7 + 14);
      session.close();
      assert.equal(first + rest, whole, variant);
      const resumed = model.session(saved);
      assert.equal(await resumed.generate(greedy(9)), rest, `${variant}: resumed`);
      resumed.close();
      assert.throws(
        () => byteModel(variant === 'mag' ? 'lmm' : 'mag').session(saved),
        /saved by another model/,
      );
      model.dispose();
    }
  });

  it('stops at a stop string (cut before it) and frees every tensor a session made when closed', async () => {
    const model = byteModel();
    const free = await model.generate('The ', { maxNewTokens: 30, temperature: 0 });
    const stop = free.slice(5, 7);
    const cut = await model.generate('The ', { maxNewTokens: 30, temperature: 0, stop });
    assert.equal(cut, free.slice(0, free.indexOf(stop)));
    const live = memory().tensors;
    const session = model.session();
    await session.read('a long enough text to fill the caches and the memory state');
    await session.generate({ maxNewTokens: 5, seed: 1 });
    session.resetMemory();
    await session.read('more');
    session.close();
    assert.equal(memory().tensors, live, 'the session leaves no tensor behind');
    assert.throws(() => session.nextTokens(), /used after close/);
    model.dispose();
  });

  it('wiping the memory changes what the model predicts (attention alone sees only its window)', async () => {
    const model = byteModel('lmm');
    const a = model.session();
    await a.read('abcdefghijklmnop');
    const kept = a.nextTokens(5);
    a.resetMemory();
    await a.read('q');
    const b = model.session();
    await b.read('abcdefghijklmnopq');
    assert.notDeepEqual(a.nextTokens(5), b.nextTokens(5));
    assert.equal(kept.length, 5);
    assert.ok(Math.abs(kept.reduce((s, t) => s + t.probability, 0) - 1) < 1, 'probabilities');
    a.close();
    b.close();
    model.dispose();
  });
});

describe('TextStream', () => {
  it('never releases half a UTF-8 character, and holds back what may start a stop string', () => {
    const tok = byteTokenizer();
    const text = 'é 東京 🚀 ok.';
    const stream = new TextStream(tok);
    const pieces = [...tok.encode(text)].map((b) => stream.push(b));
    pieces.push(stream.finish());
    assert.equal(pieces.join(''), text);
    assert.ok(pieces.every((p) => !p.includes('\uFFFD')));
    const stopping = new TextStream(tok, ['STOP']);
    const out = [...tok.encode('abcSTObSTOPxyz')].map((b) => stopping.push(b)).join('') + stopping.finish();
    assert.equal(out, 'abcSTOb');
    assert.ok(stopping.stopped);
  });
});

describe('score', () => {
  it('reads every token once: windowed over one window = streamed; a shorter last window is scored too', async () => {
    const model = byteModel('mag', 5);
    const text = 'The memory learns while the model reads; attention sees the window.';
    const n = model.tokenizer.encode(text).length;
    const streamed = await model.score(text, { mode: 'streamed', seqLen: 7 });
    const oneWindow = await model.score(text, { seqLen: n });
    assert.equal(streamed.tokens, n - 1);
    assert.equal(oneWindow.tokens, n - 1);
    assert.ok(Math.abs(streamed.loss - oneWindow.loss) < 1e-4, `${streamed.loss} vs ${oneWindow.loss}`);
    const windows = await model.score(text, { seqLen: 10, batchSize: 2 }); // 6 full windows and a tail
    assert.equal(windows.tokens, n - 1);
    assert.equal(windows.bytes, n - 1);
    assert.ok(
      Math.abs(windows.bitsPerByte - (windows.loss * windows.tokens) / Math.LN2 / windows.bytes) < 1e-12,
    );
    model.dispose();
  });
});

describe('inspect', () => {
  it('measures each token at the weights that wrote it: surprise = ‖∇_W ℓ‖ by autodiff, recall error = ‖M(k) − v‖', async () => {
    const model = byteModel('lmm', 2);
    const text = 'pass key 42.';
    const ids = model.tokenizer.encode(text);
    const inspection = await model.inspect(text);
    assert.equal(inspection.tokens.map((t) => t.text).join(''), text);
    assert.equal(inspection.memory.length, 2);
    const { config, params } = model;
    const memoryConfig = memoryLayerConfigOf(config);
    // The first memory layer's input and state, for the tokens of its first chunk: ℓ(W; k_t, v_t) =
    // ‖M_W(k_t) − v_t‖² (eq. 12) per head at the chunk-start weights, differentiated by the tape.
    const chunk = config.memory.chunkSize - (config.persistentTokens % config.memory.chunkSize);
    let expected: { surprise: Tensor; recall: Tensor } | null = null;
    const stream = modelStream(params, config, null, {
      onMemoryLayer: (layer, x, state) => {
        if (layer !== 0 || expected) return;
        const { k, v } = memoryLayerWrites(params.blocks[0]!.memory!, memoryConfig, x, state);
        const norms: Tensor[] = [];
        const recalls: Tensor[] = [];
        for (let h = 0; h < memoryConfig.heads; h++) {
          const heads = state.memory.chunkStartWeights.map((w) =>
            reshape(slice(w, [0, h, 0, 0], [1, 1, -1, -1]), [w.shape[2]!, w.shape[3]!]),
          );
          for (let t = 0; t < chunk; t++) {
            const row = (z: Tensor) => reshape(slice(z, [0, h, t, 0], [1, 1, 1, -1]), [1, z.shape[3]!]);
            const loss = (w: Tensor[]) => sum(square(sub(memoryForward(row(k), w, memoryConfig), row(v))));
            const grads = grad(loss)(heads);
            norms.push(sqrt(grads.map((g) => sum(square(g))).reduce((a, b) => add(a, b))));
            recalls.push(sqrt(loss(heads)));
          }
        }
        expected = { surprise: keep(stack(norms)), recall: keep(stack(recalls)) }; // (H·chunk), head-major
      },
    });
    await stream.feed(ids.subarray(0, chunk));
    stream.close();
    const { surprise, recall } = expected!;
    const [norm, err] = [await surprise.data(), await recall.data()];
    dispose([surprise, recall]);
    const got = inspection.memory[0]!;
    for (let h = 0; h < memoryConfig.heads; h++)
      for (let t = 0; t < chunk; t++) {
        const want = norm[h * chunk + t]!;
        assert.ok(
          Math.abs(got.surprise[h]![t]! - want) < 1e-4 * (1 + want),
          `surprise t=${t} h=${h}: ${got.surprise[h]![t]} vs ${want}`,
        );
        assert.ok(
          Math.abs(got.recallError[h]![t]! - err[h * chunk + t]!) < 1e-4,
          `recall error t=${t} h=${h}`,
        );
      }
    for (const layer of inspection.memory)
      for (let h = 0; h < memoryConfig.heads; h++)
        for (let t = 0; t < ids.length; t++) {
          assert.ok(layer.alpha[h]![t]! >= 0 && layer.alpha[h]![t]! < 1);
          assert.ok(layer.eta[h]![t]! >= 0 && layer.eta[h]![t]! <= memoryConfig.etaMax);
          assert.ok(layer.theta[h]![t]! > 0 && layer.theta[h]![t]! <= memoryConfig.thetaMax);
        }
    assert.ok(Number.isNaN(inspection.loss[0]!));
    assert.ok(inspection.loss.slice(1).every((l) => l > 0));
    model.dispose();
  });
});

describe('train', () => {
  it('trains a preset on text with progress, stops when the signal aborts, and trains on a task', async () => {
    const text = 'The memory learns while the model reads. '.repeat(40);
    const steps: number[] = [];
    const model = await train({
      preset: 'tiny',
      data: text,
      steps: 3,
      batchSize: 2,
      seqLen: 16,
      onProgress: (p) => steps.push(p.step),
    });
    assert.deepEqual(steps, [1, 2, 3]);
    assert.equal(model.config.dModel, 16);
    const signal = { aborted: false };
    const stopped: number[] = [];
    const early = await train({
      preset: 'tiny',
      data: text,
      steps: 50,
      batchSize: 2,
      seqLen: 16,
      signal,
      onProgress: (p) => {
        stopped.push(p.step);
        if (p.step === 2) signal.aborted = true;
      },
    });
    assert.deepEqual(stopped, [1, 2]);
    const task = await train({
      preset: 'tiny',
      config: { variant: 'mac' },
      data: passkeyTask({ digits: 1, cue: 'recall' }),
      steps: 1,
      batchSize: 2,
      seqLen: 96,
    });
    assert.equal(task.config.variant, 'mac');
    await assert.rejects(train({ preset: 'huge', data: text }), /unknown preset 'huge'/);
    for (const m of [model, early, task]) m.dispose();
  });

  it('with the batch shared by two threads (dataParallel) takes the same steps, to float32 rounding', async () => {
    const text = 'The memory learns while the model reads. '.repeat(40);
    const run = async (dataParallel?: number) => {
      const losses: number[] = [];
      const model = await train({
        preset: 'tiny',
        data: text,
        steps: 3,
        batchSize: 4,
        seqLen: 16,
        ...(dataParallel ? { dataParallel } : {}),
        onProgress: (p) => losses.push(p.loss),
      });
      model.dispose();
      return losses;
    };
    // on wasm whatever the suite's default (the workers' backend; a webgpu default is refused)
    const [single, shared] = await withBackend('wasm', async () => [await run(), await run(2)]);
    assert.equal(shared.length, 3);
    for (const [i, l] of shared.entries()) {
      assert.ok(Math.abs(l - single[i]!) < 1e-4 * single[i]!, `step ${i + 1}: ${l} vs ${single[i]}`);
    }
    await assert.rejects(
      train({ preset: 'tiny', data: text, dataParallel: 0 }),
      /dataParallel must be an integer ≥ 1/,
    );
  });
});

describe('tensors', () => {
  it('come from nested arrays (ragged ones refused), print their values, and show them in util.inspect', async () => {
    const t = tensor([
      [1, 2, 3],
      [4, 5, 6],
    ]);
    assert.deepEqual(t.shape, [2, 3]);
    assert.deepEqual(Array.from(await t.data()), [1, 2, 3, 4, 5, 6]);
    assert.match(
      String(t),
      t.backend.readSync
        ? /^Tensor\(float32 \[2, 3\] on \w+\)\n\[\[1, 2, 3\],\n \[4, 5, 6\]\]$/
        : /^Tensor\(float32 \[2, 3\] on \w+; read it with await tensor\.data\(\)\)$/,
    );
    assert.equal(nodeInspect(t), String(t));
    assert.throws(
      () => tensor([[1, 2], [3]]),
      /ragged nested array: values\[1\] has 1 entry where 2 were expected/,
    );
    assert.throws(() => tensor([[1, 'x']] as never), /value at values\[0\]\[1\] is string/);
    const big = tensor(new Float32Array(100), [10, 10]);
    if (big.backend.readSync) assert.match(String(big), /\[0, 0, 0, …, 0, 0, 0\],\n …,/);
    big.dispose();
    t.dispose();
    assert.match(String(t), /disposed/);
  });

  it('in Node, the high-level API uses every core unless setThreads chose otherwise', async () => {
    const files = await byteModel().files();
    const dir = join(root, 'threads');
    await (await modelFromFiles(files, 'x')).save(dir);
    // A script file, not `node -e`: worker threads inherit the parent's flags, and --input-type
    // is refused outside -e.
    const threads = async (before: string) => {
      const file = join(root, `threads-${before.length}.mjs`);
      await writeFile(
        file,
        `import { loadModel, setThreads, wasmBackend } from ${JSON.stringify(new URL('../../src/index.js', import.meta.url).href)};
${before}
await loadModel(${JSON.stringify(dir)});
console.log(wasmBackend.threadPool?.threads ?? 1);
`,
      );
      const r = spawnSync(process.execPath, [file], { encoding: 'utf8' });
      assert.equal(r.status, 0, r.stderr);
      return Number(r.stdout.trim());
    };
    assert.equal(await threads(''), availableParallelism());
    assert.equal(await threads('await setThreads(1);'), 1);
  });
});

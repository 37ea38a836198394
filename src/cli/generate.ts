/**
 * `titans generate` and `titans eval ppl`: a checkpoint (a run folder, a checkpoint directory or a
 * shipped model's name) through the high-level API.
 */
import { loadModel, setThreads } from '../api/index.js';
import { loadText } from '../data/corpus.js';
import { stderrSink } from '../report/node-sink.js';
import { Progress } from '../report/progress.js';
import { loadOptions } from './train.js';

/** The CLI's default thread count: every core (2 under CI, whose runners share theirs). */
function threadsOption(threads: number | undefined): number | undefined {
  return threads ?? (process.env.CI ? 2 : undefined);
}

/** The flags every command that reads a checkpoint takes. */
interface CheckpointFlags {
  checkpoint: string;
  threads?: number;
  allowNonfinite?: boolean;
  maxMemory?: number;
}

/** Starts the threads and loads the checkpoint, a shipped model or a run folder the flags name. */
async function openModel(o: CheckpointFlags) {
  await setThreads(threadsOption(o.threads));
  return loadModel(o.checkpoint, loadOptions(o));
}

export async function generateCommand(
  o: CheckpointFlags & {
    prompt: string;
    maxTokens: number;
    temperature: number;
    topK: number;
    topP: number;
    repetitionPenalty: number;
    stop: string[];
    seed: number;
  },
): Promise<void> {
  const model = await openModel(o);
  if (o.prompt.length === 0) throw new Error('--prompt must not be empty');
  process.stdout.write(o.prompt);
  const started = performance.now();
  let pieces = 0;
  const session = model.session();
  try {
    await session.read(o.prompt);
    const before = session.position;
    await session.generate({
      maxNewTokens: o.maxTokens,
      temperature: o.temperature,
      topK: o.topK,
      topP: o.topP,
      repetitionPenalty: o.repetitionPenalty,
      stop: o.stop,
      seed: o.seed,
      onText: (text) => {
        pieces++;
        process.stdout.write(text);
      },
    });
    const produced = session.position - before;
    const seconds = (performance.now() - started) / 1000;
    process.stdout.write('\n');
    process.stderr.write(
      `${produced} tokens in ${seconds.toFixed(2)} s (${(produced / seconds).toFixed(1)} tokens/s, prompt included in the time)\n`,
    );
  } finally {
    session.close();
    model.dispose();
  }
  if (pieces === 0 && o.maxTokens > 0) process.stderr.write('(the model produced no printable text)\n');
}

export async function evalPplCommand(
  o: CheckpointFlags & {
    data: string;
    seqLen: number;
    batchSize: number;
    maxTokens?: number;
    stream?: boolean;
  },
): Promise<void> {
  const model = await openModel(o);
  const { text, name } = await loadText(o.data).catch((e) => {
    model.dispose();
    throw e;
  });
  let ids = model.tokenizer.encode(text);
  if (o.maxTokens !== undefined && ids.length > o.maxTokens + 1) ids = ids.subarray(0, o.maxTokens + 1);
  if (ids.length < 2) {
    model.dispose();
    throw new Error(
      `${o.data}: ${ids.length} token${ids.length === 1 ? '' : 's'} of text; scoring needs at least 2 (a token and the one that follows it)`,
    );
  }
  const mode = o.stream ? 'streamed' : 'windowed';
  const progress = new Progress({ total: ids.length - 1, label: 'eval', sink: stderrSink() });
  const scored = await model
    .scoreTokens(ids, {
      mode,
      seqLen: o.seqLen,
      batchSize: o.batchSize,
      onProgress: (done) => progress.update(done),
    })
    .finally(() => {
      progress.finish();
      model.dispose();
    });
  if (!Number.isFinite(scored.loss)) {
    throw new Error(
      `the loss on ${name} is ${scored.loss}: the model's outputs are not finite${o.allowNonfinite ? ' (its weights were loaded with --allow-nonfinite)' : ''}, so there is no perplexity to report`,
    );
  }
  const how = o.stream
    ? `streamed: the text read as one stream in pieces of ${o.seqLen}, the memory and caches carried across, so every prediction sees all the text before it`
    : `windowed: windows of ${o.seqLen} tokens, each read from a fresh state as in training (the last one shorter), so a prediction sees at most ${o.seqLen - 1} tokens before it`;
  console.log(
    `${name}: ${scored.tokens} tokens predicted (${scored.bytes} bytes) · loss ${scored.loss.toFixed(4)} nats/token · perplexity ${scored.perplexity.toFixed(3)} · ${scored.bitsPerByte.toFixed(4)} bits/byte\n(${how}; ${o.stream ? 'without --stream: windows from a fresh state, as in training' : 'with --stream: one stream, the memory carried'})`,
  );
}

/**
 * The `titans` command line. Every command has --help; bad arguments and failures end in a
 * one-line error (exit code 1 or 2), never a stack trace (set TITANS_DEBUG=1 to see it).
 */
import { readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Command, CommanderError, InvalidArgumentError } from 'commander';
import { formatMemorizeTable, memorizeTable } from '../index.js';
import { readSafetensorsFile } from '../io/checkpoint.js';
import { FileReadError } from '../io/fs.js';
import { MODEL_VARIANTS } from '../models/config.js';
import { BACKEND_NAMES, backendName, selectBackend } from './backend.js';
import { demoCommand, evalTaskCommand, experimentCommand } from './experiment.js';
import { evalPplCommand, generateCommand } from './generate.js';
import { InterruptedError, trainCommand } from './train.js';

function positiveInt(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1)
    throw new InvalidArgumentError(`expected a positive integer, got '${value}'`);
  return n;
}

function positiveNumber(value: string): number {
  const n = Number(value);
  if (!Number.isFinite(n) || n <= 0)
    throw new InvalidArgumentError(`expected a positive number, got '${value}'`);
  return n;
}

function nonNegativeNumber(value: string): number {
  const n = Number(value);
  if (!Number.isFinite(n) || n < 0) throw new InvalidArgumentError(`expected a number ≥ 0, got '${value}'`);
  return n;
}

function nonNegativeInt(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0)
    throw new InvalidArgumentError(`expected an integer ≥ 0, got '${value}'`);
  return n;
}

function unitInterval(value: string): number {
  const n = Number(value);
  if (!(n >= 0 && n <= 1)) throw new InvalidArgumentError(`expected a number in [0, 1], got '${value}'`);
  return n;
}

function unitIntervalPositive(value: string): number {
  const n = Number(value);
  if (!(n > 0 && n <= 1)) throw new InvalidArgumentError(`expected a number in (0, 1], got '${value}'`);
  return n;
}

function variantName(value: string): string {
  if (!(MODEL_VARIANTS as readonly string[]).includes(value)) {
    throw new InvalidArgumentError(`expected one of ${MODEL_VARIANTS.join(', ')}`);
  }
  return value;
}

function oneOf(values: string[]) {
  return (value: string): string => {
    if (!values.includes(value)) throw new InvalidArgumentError(`expected one of ${values.join(', ')}`);
    return value;
  };
}

/** 8g, 512m, 1.5GiB, 1000000 (bytes) → bytes. */
function byteSize(value: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*([kmgt]?)(?:i?b)?$/i.exec(value.trim());
  const scale = { '': 1, k: 2 ** 10, m: 2 ** 20, g: 2 ** 30, t: 2 ** 40 }[(m?.[2] ?? '').toLowerCase()];
  const n = m && scale ? Math.floor(Number(m[1]) * scale) : Number.NaN;
  if (!(n > 0)) throw new InvalidArgumentError(`expected a size such as 16g, 512m or 1.5GiB, got '${value}'`);
  return n;
}

/** The two loading flags of every command that reads a checkpoint. */
function checkpointFlags(command: Command): Command {
  return command
    .option(
      '--allow-nonfinite',
      'load a checkpoint even when its weights hold NaN or Infinity (refused by default)',
    )
    .option(
      '--max-memory <size>',
      'refuse models whose estimated memory is past this (e.g. 16g; default 8g), checked before allocating',
      byteSize,
    );
}

function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}

/** 1k → 1024, 4096 → 4096. */
function lengthList(value: string): number[] {
  return value.split(',').map((part) => {
    const m = /^(\d+)(k?)$/i.exec(part.trim());
    if (!m || Number(m[1]) < 1)
      throw new InvalidArgumentError(`expected lengths like 1k,2k,4096, got '${value}'`);
    return Number(m[1]) * (m[2] ? 1024 : 1);
  });
}

function intList(value: string): number[] {
  return value.split(',').map((s) => positiveInt(s.trim()));
}

async function memorizeCommand(options: { pairs: number[]; dim: number; passes: number; json?: string }) {
  const started = Date.now();
  console.log(
    `Test-time memorisation (no outer training): N random unit keys → random values in d = ${options.dim}, streamed ${options.passes}× through a fresh memory, then queried.`,
  );
  const table = await memorizeTable({
    pairs: options.pairs,
    dim: options.dim,
    passes: options.passes,
    onRow: (r) =>
      console.log(
        `  depth ${r.depth} · momentum ${r.momentum ? 'on ' : 'off'} · forgetting ${r.forgetting ? 'on ' : 'off'} · θ ${r.theta}: ${r.recall.map((v) => v.toFixed(2)).join(' ')}`,
      ),
  });
  console.log(`\n${formatMemorizeTable(table)}\n`);
  console.log(
    `recall = fraction of keys whose retrieved value is nearest (L2) to its own value; chance = 1/N. ${((Date.now() - started) / 1000).toFixed(1)} s`,
  );
  if (options.json) {
    await writeFile(options.json, `${JSON.stringify(table, null, 2)}\n`);
    console.log(`wrote ${options.json}`);
  }
}

async function inspectCommand(file: string) {
  let parsed: Awaited<ReturnType<typeof readSafetensorsFile>>;
  try {
    parsed = await readSafetensorsFile(file);
  } catch (error) {
    if (error instanceof FileReadError && error.message.includes('is a directory')) {
      throw new Error(
        `${file} is a directory; inspect takes a .safetensors file (e.g. ${join(file, 'model.safetensors')})`,
      );
    }
    throw error;
  }
  const { tensors, metadata, checksums } = parsed;
  let total = 0;
  for (const [name, t] of Object.entries(tensors)) {
    total += t.data.length;
    console.log(`${name.padEnd(40)} ${t.dtype.padEnd(8)} [${t.shape.join(', ')}]`);
  }
  const hashed = Object.keys(checksums).length;
  console.log(
    `${Object.keys(tensors).length} tensors, ${total} values${hashed > 0 ? ` · SHA-256 verified for ${hashed}` : ' · no checksums in the file'}`,
  );
  if (Object.keys(metadata).length > 0) console.log('metadata:', metadata);
}

/** This package's version (package.json sits three folders above dist/src/cli). */
function packageVersion(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8'));
  return String(pkg.version);
}

export function buildProgram(): Command {
  const program = new Command();
  program
    .name('titans')
    .description('Titans (Learning to Memorize at Test Time) in TypeScript')
    .version(packageVersion(), '-V, --version', 'print the version')
    .showSuggestionAfterError()
    .exitOverride()
    .option('--backend <name>', `compute backend: ${BACKEND_NAMES.join(', ')} (default wasm)`, backendName)
    .hook('preAction', () => selectBackend(program.opts().backend));
  program
    .command('memorize')
    .description('recall vs number of stored pairs for linear and deep memories, no outer training')
    .option('--pairs <list>', 'comma-separated numbers of pairs', intList, [16, 32, 64, 128])
    .option('--dim <n>', 'key/value width d_h', positiveInt, 32)
    .option('--passes <n>', 'times the pairs are streamed through the memory', positiveInt, 16)
    .option('--json <file>', 'also write the table as JSON')
    .action(memorizeCommand);
  program
    .command('demo')
    .description(
      'the main demo (what `npm start` runs): memory vs sliding-window attention on a pass key beyond the window',
    )
    .option('--out <dir>', 'results folder', join('results', 'demo'))
    .option('--steps <n>', 'training steps per model (default 650: presets/experiments/)', positiveInt)
    .option(
      '--examples <n>',
      'test examples per context length (default 300: ±0.017 at chance 0.1)',
      positiveInt,
    )
    .option('--batch-size <n>', 'sequences per step (default 16)', positiveInt)
    .option('--variant <name>', 'the Titans model: mag or mac', oneOf(['mag', 'mac']), 'mag')
    .option('--lr <x>', 'peak learning rate (default 2e-3)', positiveNumber)
    .option(
      '--cue <kind>',
      "'recall' (prompt ends \"The pass key is \") or 'question' (RULER's)",
      oneOf(['recall', 'question']),
      'recall',
    )
    .option('--threads <n>', 'wasm threads when --jobs is 1 (default: all cores)', positiveInt)
    .option(
      '--jobs <n>',
      'models trained at once, one core each (default: both, if there are 2 cores)',
      positiveInt,
    )
    .action(demoCommand);
  program
    .command('experiment')
    .description(
      "train MAC, MAG, MAL, LMM, SWA, Transformer++ and DeltaNet on a task and test length generalisation (the paper's Table 2; 'ablation': Table 5)",
    )
    .argument('<name>', 'niah, mqar, babilong or ablation (presets/experiments/<name>.json)')
    .option('--out <dir>', 'experiment folder (default results/experiment-<name>); re-running resumes')
    .option('--steps <n>', "training steps per model (default: the preset's, 650)", positiveInt)
    .option('--batch-size <n>', "sequences per step (default: the preset's, 16)", positiveInt)
    .option(
      '--train-length <n>',
      'training sequence length, evaluated at 1×, 2×, 4× (default 256; babilong 512)',
      positiveInt,
    )
    .option('--examples <n>', "test examples per length (default: the preset's, 100)", positiveInt)
    .option('--digits <n>', 'pass-key digits (niah, ablation; default 1, chance 0.1)', positiveInt)
    .option(
      '--cue <kind>',
      "pass-key prompt (niah, ablation): 'recall' (ends \"The pass key is \", the default) or 'question' (RULER's)",
      oneOf(['recall', 'question']),
    )
    .option(
      '--noise <kind>',
      "where the pass key hides (niah, ablation): 'filler' (RULER's, the default), 'text' (State of the Union slices) or 'mixed' (either, half each)",
      oneOf(['filler', 'text', 'mixed']),
    )
    .option('--lr <x>', "peak learning rate (default: the preset's, 2e-3)", positiveNumber)
    .option(
      '--models <list>',
      'train only these models now (comma-separated); processes with different lists may share one --out',
      (v: string) => v.split(','),
    )
    .option('--seed <n>', "seed (default: the preset's, 0)", nonNegativeInt)
    .option('--threads <n>', 'wasm threads (default: all cores)', positiveInt)
    .option(
      '--jobs <n>',
      'models trained at once, each in its own worker on one core (default 1; --threads then applies)',
      positiveInt,
    )
    .action(experimentCommand);
  const train = program
    .command('train')
    .description('train a model on text (checkpoints, resume, loss curve)')
    .option(
      '--preset <name|file>',
      'a preset from presets/ (tiny, small, paper-170m) or a preset file (default: small)',
    )
    .option(
      '--variant <name>',
      `model variant: ${MODEL_VARIANTS.join(', ')} (default: the preset's)`,
      variantName,
    )
    .option(
      '--data <source>',
      'a UTF-8 text file, or builtin:sotu / builtin:sotu-small (default: builtin:sotu)',
    )
    .option('--out <dir>', 'run folder (default runs/<preset>-<variant>)')
    .option(
      '--tokenizer <spec>',
      "'byte' or 'bpe:N' (a byte-level BPE of N tokens trained on the data; default: byte)",
    )
    .option('--steps <n>', 'optimizer updates', positiveInt)
    .option('--batch-size <n>', 'sequences per micro-batch', positiveInt)
    .option('--seq-len <n>', 'tokens per sequence', positiveInt)
    .option('--accumulate <n>', 'micro-batches per update (gradient accumulation)', positiveInt)
    .option('--lr <x>', 'peak learning rate', positiveNumber)
    .option('--seed <n>', 'initialisation and data-sampling seed', nonNegativeInt)
    .option('--eval-every <n>', 'validation every n steps (0 = never)', nonNegativeInt)
    .option('--checkpoint-every <n>', 'checkpoint every n steps', positiveInt)
    .option(
      '--set <key=value>',
      'override a model config field, e.g. memory.thetaMax=0.05 (repeatable)',
      collect,
      [],
    )
    .option('--threads <n>', 'wasm threads (default: all cores)', positiveInt)
    .option(
      '--data-parallel <n>',
      'share each batch by rows between n threads, each with its own copy of the model (default 1: each kernel split across --threads)',
      positiveInt,
    )
    .option('--resume', 'continue the checkpoint in --out (other flags must agree with it)');
  checkpointFlags(train).action(trainCommand);
  const generateCmd = program
    .command('generate')
    .description('stream text from a checkpoint (memory state carried token by token)')
    .requiredOption(
      '--checkpoint <dir>',
      'a run folder, a checkpoint directory, or a shipped model (passkey-mag, sotu-mag)',
    )
    .option('--prompt <text>', 'text to continue', 'The ')
    .option('--max-tokens <n>', 'tokens to generate', positiveInt, 200)
    .option('--temperature <x>', '0 = greedy', nonNegativeNumber, 0.8)
    .option('--top-k <n>', 'sample among the k most likely tokens (0 = all)', nonNegativeInt, 40)
    .option(
      '--top-p <x>',
      'nucleus: sample among the most likely tokens holding this much probability (1 = all)',
      unitIntervalPositive,
      1,
    )
    .option(
      '--repetition-penalty <x>',
      'divide the logits of recently seen tokens (1 = off)',
      positiveNumber,
      1,
    )
    .option('--stop <text>', 'stop when this text is generated (repeatable)', collect, [])
    .option('--seed <n>', 'sampling seed', nonNegativeInt, 0)
    .option('--threads <n>', 'wasm threads (default: all cores)', positiveInt);
  checkpointFlags(generateCmd).action(generateCommand);
  const evaluate = program.command('eval').description('evaluate a checkpoint');
  const ppl = evaluate
    .command('ppl')
    .description(
      'perplexity (and bits per byte) of a checkpoint on a text: windowed (fresh state per window, as in training) or --stream (one stream, memory carried)',
    )
    .requiredOption(
      '--checkpoint <dir>',
      'a run folder, a checkpoint directory, or a shipped model (passkey-mag, sotu-mag)',
    )
    .requiredOption('--data <source>', 'a UTF-8 text file, or builtin:sotu / builtin:sotu-small')
    .option('--seq-len <n>', 'window length (with --stream: the piece length)', positiveInt, 256)
    .option('--batch-size <n>', 'windows per batch', positiveInt, 16)
    .option('--max-tokens <n>', 'evaluate at most this many tokens', positiveInt)
    .option('--stream', 'read the data as one stream, carrying the memory across windows')
    .option('--threads <n>', 'wasm threads (default: all cores)', positiveInt);
  checkpointFlags(ppl).action(evalPplCommand);
  for (const task of ['niah1', 'niah2', 'niah3', 'mqar', 'babilong-qa1', 'babilong-qa2', 'custom']) {
    const command = evaluate.command(task);
    const custom = task === 'custom';
    if (task === 'niah1')
      command
        .option('--digits <n>', 'pass-key digits (default 5, as in RULER)', positiveInt)
        .option(
          '--cue <kind>',
          "'question' (RULER's, the default) or 'recall' (ends \"The pass key is \", as the experiments train)",
          oneOf(['recall', 'question']),
        )
        .option(
          '--noise <kind>',
          "where the key hides: 'filler' (RULER's, the default), 'text' (State of the Union slices) or 'mixed'",
          oneOf(['filler', 'text', 'mixed']),
        );
    if (task === 'mqar')
      command.option(
        '--layout <kind>',
        "'power-law' (Zoology's gaps, many pairs within the window; the default) or 'block' (all pairs together at the start, or at depths up to --max-depth: beyond the window)",
        oneOf(['power-law', 'block']),
      );
    command
      .description(
        custom
          ? 'exact-match accuracy on your own {context, question, answer} JSON Lines, by prompt length'
          : `accuracy on ${task} by context length`,
      )
      .requiredOption('--checkpoint <dir>', 'a run folder or checkpoint directory');
    // The generated tasks take lengths and example counts; custom takes a file, read once in order.
    if (custom)
      command.requiredOption(
        '--data <file>',
        'JSON Lines file: one {"context", "question", "answer"} per line',
      );
    else
      command
        .option('--lengths <list>', 'context lengths, e.g. 1k,2k,4k', lengthList, [1024, 2048, 4096])
        .option('--examples <n>', 'examples per length', positiveInt, 100)
        .option(
          '--max-depth <x>',
          'needles only at depths 0..x of the context (default: anywhere); e.g. 0.9 keeps them out of the last 10%',
          unitInterval,
        );
    command
      .option('--seed <n>', 'seed', nonNegativeInt, 0)
      .option('--out <dir>', 'where results.json and accuracy.svg go (default results/eval-<task>)')
      .option('--threads <n>', 'wasm threads (default: all cores)', positiveInt);
    checkpointFlags(command).action((o) => evalTaskCommand(task, { lengths: [], examples: 0, ...o }));
  }
  program
    .command('inspect')
    .description('list the tensors of a .safetensors file')
    .argument('<file>', 'a .safetensors file')
    .action(inspectCommand);
  return program;
}

export async function main(argv: string[]): Promise<number> {
  const program = buildProgram();
  try {
    await program.parseAsync(argv, { from: 'user' });
    return 0;
  } catch (error) {
    if (error instanceof CommanderError) {
      // commander already printed its one-line message (or the help text)
      return error.exitCode === 0 ? 0 : 2;
    }
    if (process.env.TITANS_DEBUG) console.error(error);
    if (error instanceof InterruptedError) {
      console.error(`titans: ${error.message}`);
      return error.exitCode;
    }
    console.error(`titans: error: ${error instanceof Error ? error.message : String(error)}`);
    return 1;
  }
}

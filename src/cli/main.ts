/**
 * The `titans` command line. Every command has --help; bad arguments and failures end in a
 * one-line error (exit code 1 or 2), never a stack trace (set TITANS_DEBUG=1 to see it).
 */
import { writeFile } from 'node:fs/promises';
import { Command, CommanderError, InvalidArgumentError } from 'commander';
import { formatMemorizeTable, memorizeTable } from '../index.js';
import { readSafetensorsFile } from '../io/checkpoint.js';

function positiveInt(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1)
    throw new InvalidArgumentError(`expected a positive integer, got '${value}'`);
  return n;
}

function intList(value: string): number[] {
  return value.split(',').map((s) => positiveInt(s.trim()));
}

async function memorizeCommand(options: { pairs: number[]; dim: number; passes: number; json?: string }) {
  const started = Date.now();
  console.log(
    `Test-time memorisation (no outer training): N random unit keys → random values in d = ${options.dim}, streamed ${options.passes}× through a fresh memory, then queried.`,
  );
  const table = memorizeTable({
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
  const { tensors, metadata } = await readSafetensorsFile(file);
  let total = 0;
  for (const [name, t] of Object.entries(tensors)) {
    total += t.data.length;
    console.log(`${name.padEnd(40)} ${t.dtype.padEnd(8)} [${t.shape.join(', ')}]`);
  }
  console.log(`${Object.keys(tensors).length} tensors, ${total} values`);
  if (Object.keys(metadata).length > 0) console.log('metadata:', metadata);
}

export function buildProgram(): Command {
  const program = new Command();
  program
    .name('titans')
    .description('Titans (Learning to Memorize at Test Time) in TypeScript')
    .showSuggestionAfterError()
    .exitOverride();
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
    .description('the main demo (what `npm start` runs)')
    .action(() => memorizeCommand({ pairs: [16, 32, 64, 128], dim: 32, passes: 16 }));
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
    console.error(`titans: error: ${error instanceof Error ? error.message : String(error)}`);
    return 1;
  }
}

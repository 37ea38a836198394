/**
 * titans-ts/node — the Node-only parts: atomic files, safetensors files and checkpoint
 * directories, and the command line. The core (`titans-ts`) stays free of `node:*` imports.
 */

export { enableWasmThreads } from './backends/wasm/threads-node.js';
export { buildProgram, main } from './cli/main.js';
export { listPresets, loadPreset, type Preset } from './cli/presets.js';
export { BUILTIN_CORPORA, type LoadedText, loadText } from './data/corpus.js';
export * from './io/atomic.js';
export * from './io/checkpoint.js';
export {
  type EntryInfo,
  FileReadError,
  type FileSystem,
  makeDirectories,
  nodeFileSystem,
  readRegularFile,
} from './io/fs.js';
export { MANIFEST_FILE, type Manifest, nodeSha256, parseManifest } from './io/manifest.js';
export * from './io/model-checkpoint.js';
export * from './io/tensor-checkpoint.js';
export { stderrSink } from './report/node-sink.js';
export { startDataParallel } from './train/data-parallel-node.js';

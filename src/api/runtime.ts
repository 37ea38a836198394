/**
 * Where the high-level API runs: Node or a browser. The core entry imports nothing from `node:*`,
 * so Node-only modules are imported here at run time, by computed specifiers that bundlers leave
 * alone, and only when `isNode`.
 */
import { wasmBackend } from '../index.js';

/** True in Node (and Node worker threads), false in browsers and Web Workers. */
export const isNode: boolean =
  typeof (globalThis as { process?: { versions?: { node?: string } } }).process?.versions?.node === 'string';

/** Imports a Node-only module (a `node:*` builtin or one of ours) without a static import. */
export function importNode<T>(specifier: string): Promise<T> {
  if (!isNode) throw new Error(`${specifier} is only available in Node`);
  return import(/* @vite-ignore */ /* webpackIgnore: true */ specifier) as Promise<T>;
}

/** A URL inside this package (its root holds models/ and presets/), from dist/src/api/. */
export function packageUrl(path: string): URL {
  return new URL(`../../../${path}`, import.meta.url);
}

/** The bytes of a file inside this package: read from disk in Node, fetched in a browser. */
export async function readPackageFile(path: string): Promise<Uint8Array> {
  const url = packageUrl(path);
  if (isNode && url.protocol === 'file:') {
    const fs = await importNode<typeof import('node:fs/promises')>('node:fs/promises');
    const { fileURLToPath } = await importNode<typeof import('node:url')>('node:url');
    return new Uint8Array(await fs.readFile(fileURLToPath(url)));
  }
  return fetchBytes(url.href);
}

/** GET `url` as bytes; a failed request throws naming the URL and the status. */
export async function fetchBytes(url: string): Promise<Uint8Array> {
  const response = await fetch(url);
  if (!response.ok) throw new Error(`${url}: HTTP ${response.status} ${response.statusText}`.trim());
  return new Uint8Array(await response.arrayBuffer());
}

let threadsChosen = false;

/**
 * Sets the number of threads the wasm backend computes with (Node: worker threads on the same
 * memory; 1 = this thread only). Without a call, the high-level API uses every core in Node the
 * first time it loads or trains a model. In a browser this does nothing (see `enableWasmWorkers`).
 *
 * @example
 * await setThreads(1); // deterministic single-thread timings
 */
export async function setThreads(threads?: number): Promise<void> {
  threadsChosen = true;
  if (!isNode || !wasmBackend) return;
  const { enableWasmThreads } = await importNode<typeof import('../backends/wasm/threads-node.js')>(
    new URL('../backends/wasm/threads-node.js', import.meta.url).href,
  );
  enableWasmThreads(wasmBackend, threads);
}

/** Every core, unless `setThreads` was called (or a pool is already running). */
export async function useAllCoresByDefault(): Promise<void> {
  if (threadsChosen || !isNode || !wasmBackend || wasmBackend.threadPool) return;
  await setThreads();
}

/**
 * A model's inference state (memory weights and momentum, conv tails, KV caches — plain data
 * around tensors) as bytes and back: one safetensors file whose tensors are the state's tensors,
 * named by their paths, and whose metadata holds the rest of the record as JSON, each tensor
 * replaced by `{"$tensor": name}`. A tensor that appears twice (MAC's read weights are the memory
 * weights at a segment boundary) is stored once and restored as one tensor.
 */
import { Tensor } from '../engine/tensor.js';
import { parseSafetensors, serializeSafetensors } from '../io/safetensors.js';
import { fromNamedArrays, toNamedArrays } from '../io/tensors.js';

/** What the metadata records besides the state. */
export const STATE_FORMAT = 'titans-ts-state';

/**
 * Serialises a state record (any nesting of plain objects, arrays, numbers, strings, booleans,
 * null and tensors) plus `extra` JSON-able fields into safetensors bytes.
 *
 * @example
 * const bytes = await stateToBytes(session.state, { tokens: 1200 });
 */
export async function stateToBytes(state: unknown, extra: Record<string, unknown> = {}): Promise<Uint8Array> {
  const names = new Map<Tensor, string>();
  const skeleton = (value: unknown, path: string): unknown => {
    if (value instanceof Tensor) {
      if (!names.has(value)) names.set(value, path || 'state');
      return { $tensor: names.get(value) };
    }
    if (Array.isArray(value)) return value.map((v, i) => skeleton(v, path ? `${path}.${i}` : String(i)));
    if (value !== null && typeof value === 'object') {
      if (ArrayBuffer.isView(value))
        throw new TypeError(`state: a typed array at '${path}' is not supported`);
      return Object.fromEntries(
        Object.entries(value).map(([k, v]) => [k, skeleton(v, path ? `${path}.${k}` : k)]),
      );
    }
    return value;
  };
  const record = skeleton(state, '');
  const flat = Object.fromEntries([...names].map(([t, name]) => [name, t]));
  return serializeSafetensors(await toNamedArrays(flat), {
    format: STATE_FORMAT,
    state: JSON.stringify(record),
    extra: JSON.stringify(extra),
  });
}

/**
 * Reads what `stateToBytes` wrote: the state (tensors uploaded to the default backend) and the
 * extra fields. Throws naming `source` when the bytes are not a saved state.
 *
 * @example
 * const { state, extra } = stateFromBytes(await readFile('chat.state'), 'chat.state');
 */
export function stateFromBytes(
  bytes: Uint8Array,
  source = '<state>',
): { state: unknown; extra: Record<string, unknown> } {
  const { tensors, metadata } = parseSafetensors(bytes, source);
  if (metadata.format !== STATE_FORMAT || metadata.state === undefined)
    throw new Error(`${source}: not a saved titans-ts state (metadata format '${metadata.format}')`);
  const uploaded = fromNamedArrays(tensors);
  const used = new Set<string>();
  const revive = (value: unknown): unknown => {
    if (Array.isArray(value)) return value.map(revive);
    if (value !== null && typeof value === 'object') {
      const name = (value as { $tensor?: unknown }).$tensor;
      if (typeof name === 'string') {
        const t = uploaded[name];
        if (!t) throw new Error(`${source}: the state names tensor '${name}', which the file lacks`);
        used.add(name);
        return t;
      }
      return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, revive(v)]));
    }
    return value;
  };
  const state = revive(JSON.parse(metadata.state));
  for (const [name, t] of Object.entries(uploaded)) if (!used.has(name)) t.dispose();
  return { state, extra: JSON.parse(metadata.extra ?? '{}') as Record<string, unknown> };
}

import { formatShape } from '../engine/shape.js';
import { Tensor } from '../engine/tensor.js';

/**
 * Nested records and arrays of tensors: model parameters, their gradients and optimizer moments.
 * Leaves that are not tensors (numbers, strings, null, …) are carried along but never touched;
 * `valueAndGrad` gives such leaves a null gradient, and optimizers keep null moments for them.
 *
 * @example
 * const params: TensorTree = { layers: [{ w: rng.normal([4, 4]), b: zeros([4]) }], scale: ones([4]) };
 */
export type TensorTree =
  | Tensor
  | null
  | undefined
  | number
  | string
  | boolean
  | readonly TensorTree[]
  | { readonly [key: string]: TensorTree };

/**
 * @internal true for the containers a tree is made of: arrays and plain objects. Anything else
 * (tensors, typed arrays, class instances) is a leaf, so a stray Map or Date is never walked into.
 */
export function isContainer(value: unknown): value is readonly unknown[] | Record<string, unknown> {
  if (Array.isArray(value)) return true;
  if (value === null || typeof value !== 'object') return false;
  const proto = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

/** @internal the dotted name of a child: 'layers' + 0 → 'layers.0'; at the root just the key. */
export function joinPath(prefix: string, key: string | number): string {
  return prefix === '' ? String(key) : `${prefix}.${key}`;
}

/**
 * @internal calls `visit` on every leaf (tensor or not) with its dotted path, depth first in key
 * order — the order `flattenTree` names entries in.
 */
export function forEachLeaf(tree: unknown, visit: (leaf: unknown, path: string) => void, path = ''): void {
  if (Array.isArray(tree)) {
    for (let i = 0; i < tree.length; i++) forEachLeaf(tree[i], visit, joinPath(path, i));
  } else if (isContainer(tree)) {
    for (const [key, child] of Object.entries(tree)) forEachLeaf(child, visit, joinPath(path, key));
  } else {
    visit(tree, path);
  }
}

/**
 * @internal rebuilds a tree with the same containers, each leaf replaced by `fn(leaf, path)`.
 * Arrays stay arrays and objects plain objects, so the result has the input's structure.
 */
export function mapLeaves(tree: unknown, fn: (leaf: unknown, path: string) => unknown, path = ''): unknown {
  if (Array.isArray(tree)) return tree.map((child, i) => mapLeaves(child, fn, joinPath(path, i)));
  if (isContainer(tree)) {
    const out: Record<string, unknown> = {};
    for (const [key, child] of Object.entries(tree)) out[key] = mapLeaves(child, fn, joinPath(path, key));
    return out;
  }
  return fn(tree, path);
}

/**
 * Names every tensor leaf of a tree by its dotted path (array indices are path segments), under
 * `prefix`: the flat, named form that checkpoint files store. Non-tensor leaves (null moments,
 * the optimizer's `step` number, config values) are left out — store those as metadata.
 *
 * The result holds the tree's own tensors, not copies. Two different leaves that would get the
 * same name (a key containing a dot, e.g. `{ 'a.b': x, a: { b: y } }`) are an error rather than
 * one silently overwriting the other.
 *
 * @example
 * flattenTree({ layers: [{ wq: wq0 }], norm: g }, 'model'); // { 'model.layers.0.wq': wq0, 'model.norm': g }
 * flattenTree(state, 'opt'); // { 'opt.m.layers.0.wq': …, 'opt.v.layers.0.wq': …, … } (step left out)
 */
export function flattenTree(tree: unknown, prefix = ''): Record<string, Tensor> {
  const flat: Record<string, Tensor> = {};
  forEachLeaf(
    tree,
    (leaf, name) => {
      if (!(leaf instanceof Tensor)) return;
      if (name === '') {
        throw new RangeError('flattenTree: a bare tensor needs a non-empty prefix to be named by');
      }
      if (Object.hasOwn(flat, name)) {
        throw new RangeError(`flattenTree: two leaves are both named '${name}' (does a key contain a '.'?)`);
      }
      flat[name] = leaf;
    },
    prefix,
  );
  return flat;
}

function describe(t: Tensor): string {
  return `${t.dtype} ${formatShape(t.shape)}`;
}

/** Up to `limit` names, quoted, for error messages that should say what *is* there. */
function listNames(names: readonly string[], limit = 6): string {
  if (names.length === 0) return 'none';
  const shown = names.slice(0, limit).map((n) => `'${n}'`);
  return names.length > limit ? `${shown.join(', ')}, … (${names.length} in all)` : shown.join(', ');
}

/**
 * The inverse of `flattenTree`: a tree shaped like `template` whose tensor leaves are taken from
 * `flat` by their dotted names under `prefix`. The template is only read (structure, and each
 * tensor's shape and dtype, which the entry must match); its non-tensor leaves are copied.
 *
 * Every entry under `prefix` must be used and every template tensor must find its entry, so a
 * checkpoint from a different architecture fails loudly, naming the entry. Entries outside
 * `prefix` are ignored (one file can hold `model.*` and `opt.*`). The result shares `flat`'s
 * tensors: dispose the result or the record, not copies of both.
 *
 * @example
 * const flat = { ...flattenTree(params, 'model'), ...flattenTree(state, 'opt') };
 * const restored = unflattenInto(params, flat, 'model');              // same structure as params
 * const moments = unflattenInto(freshState, flat, 'opt');            // then set `step` from metadata
 */
export function unflattenInto<T>(template: T, flat: Readonly<Record<string, Tensor>>, prefix = ''): T {
  const under = Object.keys(flat).filter(
    (name) => prefix === '' || name === prefix || name.startsWith(`${prefix}.`),
  );
  const used = new Set<string>();
  const where = prefix === '' ? 'the flat record' : `the flat record under '${prefix}'`;
  const result = mapLeaves(
    template,
    (leaf, name) => {
      if (!(leaf instanceof Tensor)) return leaf;
      if (!Object.hasOwn(flat, name)) {
        throw new RangeError(
          `unflattenInto: missing entry '${name}' (expected ${describe(leaf)}) in ${where}; it has ${listNames(under)}`,
        );
      }
      const entry = flat[name];
      if (!(entry instanceof Tensor)) {
        throw new TypeError(`unflattenInto: entry '${name}' is not a Tensor`);
      }
      if (
        entry.dtype !== leaf.dtype ||
        entry.shape.length !== leaf.shape.length ||
        entry.shape.some((d, i) => d !== leaf.shape[i])
      ) {
        throw new RangeError(
          `unflattenInto: entry '${name}' is ${describe(entry)} but the template expects ${describe(leaf)}`,
        );
      }
      used.add(name);
      return entry;
    },
    prefix,
  );
  const extra = under.filter((name) => !used.has(name));
  if (extra.length > 0) {
    throw new RangeError(`unflattenInto: ${where} has entries the template does not: ${listNames(extra)}`);
  }
  return result as T;
}

/// <reference types="@webgpu/types" />
/**
 * Bind groups for the WebGPU backend's kernels. A kernel's storage arrays are laid out by
 * storageSlot() (wgsl.ts): groups 1 and 2 hold its first two arrays alone, group 3 the rest, so a
 * bind group of one buffer serves every kernel that takes that buffer first or second and the
 * number of bind groups grows with the buffers, not with their combinations. Each is made once
 * and kept: some WebGPU implementations (dawn.node) never free a bind group and crash after about
 * 65 thousand, so past `max` this refuses with an error naming the cause. Browser-safe.
 */
import type { Binding } from './context.js';

const STAGE_COMPUTE = 0x4;

export class BindGroups {
  /** Bind groups made so far. */
  made = 0;
  private readonly layouts = new Map<string, GPUBindGroupLayout>();
  private readonly groups = new Map<string, GPUBindGroup>();
  private readonly ids = new WeakMap<GPUBuffer, number>();
  private readonly keysOf = new Map<number, string[]>();
  private nextId = 1;

  constructor(
    private readonly device: GPUDevice,
    private readonly max: number,
    /** The op being run, for the error message. */
    private readonly describe: () => string,
  ) {}

  /**
   * The storage signature of a WGSL source ('r' read-only, 'w' writable per array, in storageSlot
   * order) from its declarations.
   */
  static signature(code: string, key: string): string {
    const access = new Map<number, string>();
    for (const m of code.matchAll(/@group\((\d)\) @binding\((\d+)\) var<storage, (read_write|read)>/g)) {
      const group = Number(m[1]);
      access.set(group < 3 ? group - 1 : 2 + Number(m[2]), m[3] === 'read_write' ? 'w' : 'r');
    }
    return Array.from({ length: access.size }, (_, i) => {
      const a = access.get(i);
      if (!a) throw new Error(`webgpu backend: kernel ${key} leaves storage slot ${i} undeclared`);
      return a;
    }).join('');
  }

  /** A signature split by group: the first array, the second, the rest (empty parts dropped). */
  static parts(signature: string): string[] {
    return [signature.slice(0, 1), signature.slice(1, 2), signature.slice(2)].filter((x) => x !== '');
  }

  /** The bind group layouts of groups 1, 2, 3 for a storage signature. */
  layoutsFor(signature: string): GPUBindGroupLayout[] {
    return BindGroups.parts(signature).map((part) => {
      let layout = this.layouts.get(part);
      if (!layout) {
        layout = this.device.createBindGroupLayout({
          entries: [...part].map((a, i) => ({
            binding: i,
            visibility: STAGE_COMPUTE,
            buffer: { type: a === 'w' ? ('storage' as const) : ('read-only-storage' as const) },
          })),
        });
        this.layouts.set(part, layout);
      }
      return layout;
    });
  }

  /** The bind groups of a dispatch with this signature and these bindings (groups 1, 2, 3). */
  forDispatch(signature: string, resources: readonly Binding[]): GPUBindGroup[] {
    const parts = BindGroups.parts(signature);
    const slices = [resources.slice(0, 1), resources.slice(1, 2), resources.slice(2)];
    return parts.map((part, i) => this.group(part, slices[i]!));
  }

  private group(part: string, resources: readonly Binding[]): GPUBindGroup {
    let key = part;
    for (const r of resources) key += `|${this.idOf(r.buffer)}:${r.offset}:${r.size}`;
    let group = this.groups.get(key);
    if (!group) {
      if (this.made >= this.max) {
        throw new Error(
          `webgpu backend: ${this.describe()} needs a new bind group, but ${this.made} were made on this ` +
            'device and this WebGPU implementation frees none. Each new buffer takes one: free tensors with ' +
            'tidy() or dispose() so buffers are reused, or load a new backend.',
        );
      }
      group = this.device.createBindGroup({
        layout: this.layouts.get(part)!,
        entries: resources.map((r, i) => ({ binding: i, resource: { ...r } })),
      });
      this.groups.set(key, group);
      this.made++;
      for (const r of resources) {
        const id = this.idOf(r.buffer);
        const keys = this.keysOf.get(id);
        if (keys) keys.push(key);
        else this.keysOf.set(id, [key]);
      }
    }
    return group;
  }

  /** A buffer's id: the order in which buffers were first seen (the pool's lowest-first key). */
  idOf(buffer: GPUBuffer): number {
    let id = this.ids.get(buffer);
    if (id === undefined) {
      id = this.nextId++;
      this.ids.set(buffer, id);
    }
    return id;
  }

  /** Forgets the bind groups that use a buffer about to be destroyed. */
  forget(buffer: GPUBuffer): void {
    const id = this.ids.get(buffer);
    if (id === undefined) return;
    for (const key of this.keysOf.get(id) ?? []) this.groups.delete(key);
    this.keysOf.delete(id);
  }
}

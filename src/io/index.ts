/** Browser-safe serialisation (no `node:*`): safetensors bytes. */
export * from './safetensors.js';
export * from './tensors.js';

/** Browser-safe serialisation (no `node:*`): safetensors bytes, SHA-256. */
export * from './safetensors.js';
export * from './sha256.js';
export * from './tensors.js';

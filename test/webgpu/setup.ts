/**
 * Preloaded into every test process by `npm run test:webgpu` (scripts/test-webgpu.sh sets
 * TITANS_TEST_IMPORT): registers the WebGPU backend and makes it the default, so the whole suite
 * runs on it. Fails loudly where no adapter is found rather than running nothing.
 */
import { loadWebGpuBackend } from '../../src/backends/webgpu/load.js';
import { setBackend } from '../../src/index.js';

const backend = await loadWebGpuBackend();
if (!backend) {
  console.error(
    'test:webgpu: no WebGPU adapter found (is a Vulkan driver installed? see scripts/setup-webgpu.sh)',
  );
  process.exit(1);
}
setBackend(backend.name);

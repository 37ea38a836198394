/**
 * Scalar special functions for the reference backend, accurate to float64 rounding (about
 * 1e−15 relative), and the derivatives of the smooth activations up to order 4.
 */

const TWO_OVER_SQRT_PI = 1.1283791670955126;
const INV_SQRT_PI = 0.5641895835477563;
const INV_SQRT_2PI = 0.3989422804014327;
const SQRT1_2 = Math.SQRT1_2;

/**
 * erfc(z) for z ≥ 0. Below 1.5: 1 − erf(z) from the positive-term series
 * erf(z) = 2/√π · e^{−z²} · Σ_n 2ⁿ z^{2n+1} / (1·3·…·(2n+1)) (no cancellation).
 * Above: the continued fraction erfc(z) = e^{−z²}/√π · 1/(z + (1/2)/(z + 1/(z + (3/2)/(z + …)))).
 */
function erfcNonNegative(z: number): number {
  if (z < 1.5) return 1 - erfSeries(z);
  if (z > 27) return 0;
  let f = z;
  for (let k = 90; k >= 1; k--) f = z + k / 2 / f;
  return (Math.exp(-z * z) * INV_SQRT_PI) / f;
}

function erfSeries(z: number): number {
  const z2 = z * z;
  let term = z;
  let total = z;
  for (let n = 1; n < 200; n++) {
    term *= (2 * z2) / (2 * n + 1);
    total += term;
    if (term < total * 1e-17) break;
  }
  return TWO_OVER_SQRT_PI * Math.exp(-z2) * total;
}

/** The standard normal CDF Φ(x). */
export function normalCdf(x: number): number {
  const z = Math.abs(x) * SQRT1_2;
  const tail = 0.5 * erfcNonNegative(z);
  return x >= 0 ? 1 - tail : tail;
}

/** The standard normal density φ(x). */
export function normalPdf(x: number): number {
  return INV_SQRT_2PI * Math.exp(-0.5 * x * x);
}

export function erf(x: number): number {
  const v = 1 - erfcNonNegative(Math.abs(x));
  return x >= 0 ? v : -v;
}

/** σ(x) without overflow. */
export function sigmoid(x: number): number {
  if (x >= 0) return 1 / (1 + Math.exp(-x));
  const e = Math.exp(x);
  return e / (1 + e);
}

/** The n-th derivative of σ, n = 0…4, as polynomials in s = σ(x) times σ' = s(1−s). */
export function sigmoidDerivative(x: number, n: number): number {
  const s = sigmoid(x);
  if (n === 0) return s;
  const d = s * sigmoid(-x); // σ(−x) = 1 − σ(x), without the cancellation for large x
  switch (n) {
    case 1:
      return d;
    case 2:
      return d * (1 - 2 * s);
    case 3:
      return d * (1 - 6 * s + 6 * s * s);
    case 4:
      return d * (1 - 14 * s + 36 * s * s - 24 * s * s * s);
    default:
      throw new RangeError(`sigmoid derivative of order ${n} is not provided`);
  }
}

/** The n-th derivative of tanh, n = 0…4, in t = tanh(x). */
export function tanhDerivative(x: number, n: number): number {
  const t = Math.tanh(x);
  const c = Math.cosh(x);
  const d = 1 / (c * c); // 1 − t², without the cancellation for large |x|
  switch (n) {
    case 0:
      return t;
    case 1:
      return d;
    case 2:
      return -2 * t * d;
    case 3:
      return -2 * d * (1 - 3 * t * t);
    case 4:
      return 8 * t * d * (2 - 3 * t * t);
    default:
      throw new RangeError(`tanh derivative of order ${n} is not provided`);
  }
}

/** silu(x) = x σ(x); its n-th derivative is x σ⁽ⁿ⁾(x) + n σ⁽ⁿ⁻¹⁾(x). */
export function siluDerivative(x: number, n: number): number {
  if (n === 0) return x * sigmoid(x);
  return x * sigmoidDerivative(x, n) + n * sigmoidDerivative(x, n - 1);
}

/** gelu(x) = x Φ(x); derivatives are polynomials times φ(x) (plus Φ for the first). */
export function geluDerivative(x: number, n: number): number {
  switch (n) {
    case 0:
      return x * normalCdf(x);
    case 1:
      return x * normalPdf(x) + normalCdf(x);
    case 2:
      return (2 - x * x) * normalPdf(x);
    case 3:
      return (x * x * x - 4 * x) * normalPdf(x);
    case 4:
      return (-x * x * x * x + 7 * x * x - 4) * normalPdf(x);
    default:
      throw new RangeError(`gelu derivative of order ${n} is not provided`);
  }
}

/** softplus(x) = log(1 + eˣ); its n-th derivative is σ⁽ⁿ⁻¹⁾. */
export function softplusDerivative(x: number, n: number): number {
  if (n === 0) return Math.max(x, 0) + Math.log1p(Math.exp(-Math.abs(x)));
  return sigmoidDerivative(x, n - 1);
}

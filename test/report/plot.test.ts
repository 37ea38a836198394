/**
 * The SVG line chart: a well-formed standalone document, escaped text, broken lines at
 * non-finite points, nice ticks (1/2/5 steps; powers of ten on log axes), and stable output.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import * as fc from 'fast-check';
import { lineChartSvg, logTicks, niceLinearTicks, type Series } from '../../src/report/plot.js';

interface Element {
  name: string;
  attributes: Record<string, string>;
  text: string;
  children: Element[];
}

const TAG = /<(\/?)([A-Za-z][\w:.-]*)((?:\s+[A-Za-z][\w:.-]*="[^"<]*")*)\s*(\/?)>/y;
const ATTRIBUTE = /([A-Za-z][\w:.-]*)="([^"<]*)"/g;
const BAD_ENTITY = /&(?!(?:amp|lt|gt|quot|apos);)/;

/**
 * A tiny XML checker for what the chart writes: tags with double-quoted attributes, text without
 * raw `<` or stray `&`, every tag closed in order, one root element. Returns the root element.
 */
function parseXml(text: string): Element {
  const root: Element = { name: '#document', attributes: {}, text: '', children: [] };
  const stack: Element[] = [root];
  let position = 0;
  while (position < text.length) {
    const open = text.indexOf('<', position);
    const content = text.slice(position, open === -1 ? text.length : open);
    assert.doesNotMatch(content, BAD_ENTITY, `unescaped & in text near ${position}`);
    if (stack.length === 1) assert.equal(content.trim(), '', `text outside the root element: ${content}`);
    else stack[stack.length - 1].text += content;
    if (open === -1) break;
    TAG.lastIndex = open;
    const match = TAG.exec(text);
    assert.ok(match, `malformed tag at ${open}: ${text.slice(open, open + 60)}`);
    const [whole, closing, name, attributeText, selfClosing] = match;
    position = open + whole.length;
    if (closing) {
      assert.equal(attributeText + selfClosing, '', `closing tag </${name}> with attributes`);
      const top = stack.pop();
      assert.equal(top?.name, name, `</${name}> closes <${top?.name}>`);
      continue;
    }
    const attributes: Record<string, string> = {};
    for (const [, key, value] of attributeText.matchAll(ATTRIBUTE)) {
      assert.ok(!(key in attributes), `duplicate attribute ${key} on <${name}>`);
      assert.doesNotMatch(value, BAD_ENTITY, `unescaped & in attribute ${key}`);
      attributes[key] = value;
    }
    const element: Element = { name, attributes, text: '', children: [] };
    stack[stack.length - 1].children.push(element);
    if (!selfClosing) stack.push(element);
  }
  assert.equal(stack.length, 1, `unclosed <${stack[stack.length - 1].name}>`);
  assert.equal(root.children.length, 1, 'exactly one root element');
  return root.children[0];
}

function findAll(element: Element, predicate: (e: Element) => boolean): Element[] {
  const found = predicate(element) ? [element] : [];
  for (const child of element.children) found.push(...findAll(child, predicate));
  return found;
}

/** The tick labels of one axis, read back from the chart. */
function tickLabels(svg: string, axis: 'x' | 'y'): string[] {
  const group = findAll(parseXml(svg), (e) => e.name === 'g' && e.attributes.class === `${axis}-ticks`);
  assert.equal(group.length, 1);
  return group[0].children.map((text) => text.text);
}

function seriesPaths(svg: string): Element[] {
  const [group] = findAll(parseXml(svg), (e) => e.name === 'g' && e.attributes.class === 'series');
  return group.children.filter((e) => e.name === 'path');
}

/** The step is 1, 2 or 5 × 10^k, the ticks are whole multiples of it, evenly spaced. */
function assertNice(ticks: number[]): void {
  assert.ok(ticks.length >= 2, `too few ticks: ${ticks}`);
  const rawStep = ticks[1] - ticks[0];
  const power = 10 ** Math.floor(Math.log10(rawStep) + 1e-6);
  const mantissa = [1, 2, 5, 10].find((m) => Math.abs(rawStep / power - m) < 1e-6);
  assert.ok(mantissa !== undefined, `step ${rawStep} of ${ticks} is not 1, 2 or 5 × 10^k`);
  const step = mantissa * power;
  ticks.forEach((tick, i) => {
    const multiple = tick / step;
    const tolerance = 1e-6 + 1e-9 * Math.abs(multiple);
    assert.ok(Math.abs(multiple - Math.round(multiple)) < tolerance, `${tick} is not a multiple of ${step}`);
    if (i > 0) assert.ok(Math.abs(tick - ticks[i - 1] - step) < step * 1e-6, `uneven ticks ${ticks}`);
  });
}

const lossCurve: Series = {
  name: 'train',
  points: Array.from({ length: 50 }, (_, i) => [i * 20, 2 + 3 * Math.exp(-i / 10)] as const),
};

describe('lineChartSvg', () => {
  it('writes one well-formed standalone <svg> document with the xmlns set', () => {
    const svg = lineChartSvg([lossCurve, { ...lossCurve, name: 'valid', dashed: true }], {
      title: 'Loss',
      xLabel: 'step',
      yLabel: 'loss',
      horizontalLines: [{ y: 2.5, label: 'target' }],
    });
    const root = parseXml(svg);
    assert.equal(root.name, 'svg');
    assert.equal(root.attributes.xmlns, 'http://www.w3.org/2000/svg');
    assert.equal(root.attributes.viewBox, '0 0 640 400');
    const paths = seriesPaths(svg);
    assert.equal(paths.length, 2);
    assert.notEqual(paths[0].attributes.stroke, paths[1].attributes.stroke, 'distinct colours');
    assert.equal(paths[0].attributes['stroke-dasharray'], undefined);
    assert.ok(paths[1].attributes['stroke-dasharray'], 'the dashed series is dashed');
    // Every clip-path reference points at a clipPath defined in the document.
    const [clip] = findAll(root, (e) => e.name === 'clipPath');
    const users = findAll(root, (e) => e.attributes['clip-path'] !== undefined);
    assert.ok(users.length >= 2);
    for (const user of users) assert.equal(user.attributes['clip-path'], `url(#${clip.attributes.id})`);
    const texts = findAll(root, (e) => e.name === 'text').map((e) => e.text);
    for (const label of ['Loss', 'step', 'loss', 'target', 'train', 'valid']) {
      assert.ok(texts.includes(label), `missing text ${label}`);
    }
  });

  it('XML-escapes series names, title, labels and reference-line labels', () => {
    const nasty = `a<b & "c" 'd' >`;
    const svg = lineChartSvg([{ name: nasty, points: [[0, 1]] }], {
      title: nasty,
      xLabel: nasty,
      yLabel: nasty,
      horizontalLines: [{ y: 1, label: nasty }],
    });
    parseXml(svg);
    const escaped = 'a&lt;b &amp; &quot;c&quot; &apos;d&apos; &gt;';
    // <title>, title text, x label, y label, reference label, legend entry.
    assert.equal(svg.split(escaped).length - 1, 6);
    assert.ok(!svg.includes(nasty));
    // Control characters are not allowed in XML 1.0 and are dropped.
    const control = lineChartSvg([{ name: 'bell\u0007 tab\u0001', points: [] }]);
    parseXml(control);
    assert.ok(control.includes('>bell tab<'));
  });

  it('skips non-finite points and breaks the line there', () => {
    const svg = lineChartSvg([
      {
        name: 'gappy',
        points: [
          [0, 1],
          [1, 2],
          [2, Number.NaN],
          [3, 4],
          [4, 5],
          [Number.POSITIVE_INFINITY, 1],
          [6, Number.NEGATIVE_INFINITY],
        ],
      },
    ]);
    parseXml(svg);
    assert.doesNotMatch(svg, /NaN|Infinity/);
    const [path] = seriesPaths(svg);
    const moves = path.attributes.d.match(/M/g) ?? [];
    assert.equal(moves.length, 2, `two segments in ${path.attributes.d}`);
    assert.equal((path.attributes.d.match(/L/g) ?? []).length, 2);
    // The x axis spans only the finite points.
    assert.equal(Number(tickLabels(svg, 'x').at(-1)), 4);
  });

  it('skips points ≤ 0 on a log axis instead of failing', () => {
    const svg = lineChartSvg(
      [
        {
          name: 'acc',
          points: [
            [0, 0.5],
            [10, 0.6],
            [100, 0.7],
          ],
        },
      ],
      { logX: true },
    );
    parseXml(svg);
    assert.doesNotMatch(svg, /NaN|Infinity/);
    assert.deepEqual(tickLabels(svg, 'x'), ['10', '20', '50', '100']);
  });

  it('draws empty series, no series, and a single point', () => {
    const cases: Series[][] = [
      [],
      [{ name: 'empty', points: [] }],
      [{ name: 'nan', points: [[1, Number.NaN]] }],
    ];
    for (const series of cases) {
      const svg = lineChartSvg(series, { logX: true, logY: true });
      parseXml(svg);
      assert.ok(svg.includes('no data'));
      assert.doesNotMatch(svg, /NaN|Infinity/);
    }
    const single = lineChartSvg([{ name: 'one', points: [[5, 3]] }]);
    const root = parseXml(single);
    assert.doesNotMatch(single, /NaN|Infinity/);
    assert.equal(seriesPaths(single).length, 0, 'no line through one point');
    assert.equal(findAll(root, (e) => e.name === 'circle').length, 1, 'but a dot');
    assertNice(tickLabels(single, 'x').map(Number));
    assertNice(tickLabels(single, 'y').map(Number));
  });

  it('puts log-axis ticks at powers of ten', () => {
    const points = [10, 100, 1000, 10_000, 100_000].map((x, i) => [x, i / 4] as const);
    const svg = lineChartSvg([{ name: 'recall', points }], { logX: true, width: 800 });
    assert.deepEqual(tickLabels(svg, 'x'), ['10', '100', '1k', '10k', '100k']);
    // Equal ratios are equal distances.
    const [path] = seriesPaths(svg);
    const xs = [...path.attributes.d.matchAll(/[ML](-?[\d.]+) /g)].map((m) => Number(m[1]));
    const gaps = xs.slice(1).map((x, i) => x - xs[i]);
    for (const gap of gaps) assert.ok(Math.abs(gap - gaps[0]) < 0.02, `uneven log spacing ${gaps}`);

    assert.deepEqual(logTicks(1, 10_000), [1, 10, 100, 1000, 10_000]);
    assert.deepEqual(logTicks(0.001, 1), [0.001, 0.01, 0.1, 1]);
    // Many decades are thinned to every k-th power, still powers of ten.
    const wide = logTicks(1e-6, 1e6, 6);
    assert.ok(wide.length >= 3 && wide.length <= 7, `${wide}`);
    for (const tick of wide) assert.equal(tick, 10 ** Math.round(Math.log10(tick)));
    // Under two decades: 1-2-5 steps in between.
    assert.deepEqual(logTicks(500, 50_000), [500, 1000, 2000, 5000, 10_000, 20_000, 50_000]);
  });

  it('labels a log y axis and fixed bounds with nice values', () => {
    const svg = lineChartSvg(
      [
        {
          name: 'loss',
          points: [
            [1, 0.01],
            [2, 10],
          ],
        },
      ],
      { logY: true },
    );
    assert.deepEqual(tickLabels(svg, 'y'), ['0.01', '0.1', '1', '10']);
    const bounded = lineChartSvg([lossCurve], { yMin: 0, yMax: 1 });
    assert.deepEqual(tickLabels(bounded, 'y'), ['0.0', '0.2', '0.4', '0.6', '0.8', '1.0']);
  });

  it('chooses nice linear ticks for any range', () => {
    assert.deepEqual(niceLinearTicks(0, 1, 5), [0, 0.2, 0.4, 0.6, 0.8, 1]);
    assert.deepEqual(niceLinearTicks(3, 97, 4), [20, 40, 60, 80]);
    assert.deepEqual(niceLinearTicks(0.1, 0.35, 5), [0.1, 0.15, 0.2, 0.25, 0.3, 0.35]);
    // Past 2^53 steps from zero, counting ticks by k++ would never end.
    assert.ok(niceLinearTicks(9.999999999999995, 10, 4).length <= 5);
    fc.assert(
      fc.property(
        fc.double({ min: -1e6, max: 1e6, noNaN: true }),
        fc.double({ min: 1e-3, max: 1e6, noNaN: true }),
        fc.integer({ min: 2, max: 10 }),
        (min, span, target) => {
          const ticks = niceLinearTicks(min, min + span, target);
          if (ticks.length < 2) return; // a range narrower than one step may hold a single tick
          assertNice(ticks);
          assert.ok(ticks[0] >= min - span * 1e-9 && ticks.at(-1)! <= min + span * (1 + 1e-9));
          assert.ok(ticks.length <= 2 * target + 1, `${ticks.length} ticks for target ${target}`);
        },
      ),
      { numRuns: 300, seed: 7 },
    );
  });

  it('draws any points without NaN in the output, and fits axes out to whole ticks', () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.double(), fc.double()), { minLength: 1, maxLength: 20 }),
        fc.boolean(),
        fc.boolean(),
        (points, logX, logY) => {
          const svg = lineChartSvg([{ name: 'random', points }], { logX, logY });
          parseXml(svg);
          assert.doesNotMatch(svg, /NaN|Infinity/);
          for (const axis of ['x', 'y'] as const) {
            const labels = tickLabels(svg, axis);
            assert.ok(labels.length >= 1, `no ${axis} ticks`);
          }
        },
      ),
      { numRuns: 300, seed: 11 },
    );
    const svg = lineChartSvg([lossCurve]);
    const xs = tickLabels(svg, 'x').map(Number);
    const ys = tickLabels(svg, 'y').map(Number);
    assertNice(xs);
    assertNice(ys);
    assert.ok(xs[0] <= 0 && xs.at(-1)! >= 980, `x ticks ${xs} cover the data`);
    assert.ok(ys[0] <= 2.1 && ys.at(-1)! >= 5, `y ticks ${ys} cover the data`);
  });

  it('is deterministic, and different charts get different clip ids', () => {
    const options = { title: 'Loss', logY: true, horizontalLines: [{ y: 3, label: 'chance' }] };
    const a = lineChartSvg([lossCurve], options);
    assert.equal(lineChartSvg([lossCurve], options), a);
    const b = lineChartSvg([{ ...lossCurve, name: 'other' }], options);
    const clipId = (svg: string) => findAll(parseXml(svg), (e) => e.name === 'clipPath')[0].attributes.id;
    assert.notEqual(clipId(a), clipId(b));
  });

  it('draws a dashed, labelled reference line', () => {
    const svg = lineChartSvg([lossCurve], { horizontalLines: [{ y: 0.5, label: 'chance' }] });
    const [group] = findAll(parseXml(svg), (e) => e.attributes.class === 'reference');
    const [line] = group.children.filter((e) => e.name === 'line');
    assert.ok(line.attributes['stroke-dasharray']);
    assert.equal(line.attributes.y1, line.attributes.y2);
    assert.equal(group.children.find((e) => e.name === 'text')?.text, 'chance');
    // The line is part of the fitted range.
    assert.ok(Number(tickLabels(svg, 'y')[0]) <= 0.5);
  });

  it('gives more series than colours distinct colour-and-dash styles', () => {
    const many = Array.from({ length: 10 }, (_, i) => ({
      name: `s${i}`,
      points: [
        [0, i],
        [1, i + 1],
      ] as const,
    }));
    const styles = seriesPaths(lineChartSvg(many)).map(
      (p) => `${p.attributes.stroke}/${p.attributes['stroke-dasharray'] ?? ''}`,
    );
    assert.equal(new Set(styles).size, 10);
  });

  it('rejects impossible options', () => {
    assert.throws(() => lineChartSvg([], { yMin: 1, yMax: 1 }), RangeError);
    assert.throws(() => lineChartSvg([], { logY: true, yMin: 0 }), RangeError);
    assert.throws(() => lineChartSvg([], { width: 0 }), RangeError);
    assert.throws(() => lineChartSvg([], { yMax: Number.NaN }), RangeError);
  });
});

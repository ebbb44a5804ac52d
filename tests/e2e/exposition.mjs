// A strict reader of the Prometheus text exposition format, version 0.0.4,
// as Prometheus's own parser reads it: every line must be a HELP, TYPE or
// other comment, a blank line, or a sample; a family's HELP and TYPE come
// at most once each and before its samples, its samples are contiguous, a
// series appears once. Throws an Error naming the line at the first fault.
//
// Returns Map(familyName -> { type, help, samples: [{ name, labels, value }] }).

const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;
const TYPES = new Set(['counter', 'gauge', 'histogram', 'summary', 'untyped']);
// Go's strconv.ParseFloat, as Prometheus accepts values.
const FLOAT = /^[+-]?(?:(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?|Inf|inf|NaN)$/;
const TIMESTAMP = /^-?\d+$/;

function parseLabels(text, where) {
  // text is what is between the braces.
  const labels = {};
  let i = 0;
  while (i < text.length) {
    const eq = text.indexOf('=', i);
    if (eq < 0) throw new Error(`${where}: label without "="`);
    const name = text.slice(i, eq).trim();
    if (!LABEL_NAME.test(name) || name.startsWith('__'))
      throw new Error(`${where}: bad label name "${name}"`);
    if (name in labels) throw new Error(`${where}: label "${name}" twice`);
    if (text[eq + 1] !== '"') throw new Error(`${where}: label value not quoted`);
    let j = eq + 2, value = '';
    for (;;) {
      if (j >= text.length) throw new Error(`${where}: unterminated label value`);
      const c = text[j];
      if (c === '"') break;
      if (c === '\\') {
        const e = text[j + 1];
        if (e === '\\') value += '\\';
        else if (e === '"') value += '"';
        else if (e === 'n') value += '\n';
        else throw new Error(`${where}: bad escape "\\${e}" in label value`);
        j += 2;
      } else if (c === '\n') {
        throw new Error(`${where}: raw newline in label value`);
      } else {
        value += c;
        j++;
      }
    }
    labels[name] = value;
    i = j + 1;
    if (i < text.length) {
      if (text[i] !== ',') throw new Error(`${where}: expected "," between labels`);
      i++;
    }
  }
  return labels;
}

// Splits a sample line into name, label text, value and timestamp.
function splitSample(line, where) {
  let rest, name, labels = {};
  const brace = line.indexOf('{');
  const space = line.indexOf(' ');
  if (brace >= 0 && (space < 0 || brace < space)) {
    name = line.slice(0, brace);
    // The closing brace is the first one outside a quoted value.
    let j = brace + 1, quoted = false;
    for (; j < line.length; j++) {
      if (quoted && line[j] === '\\') { j++; continue; }
      if (line[j] === '"') quoted = !quoted;
      else if (line[j] === '}' && !quoted) break;
    }
    if (j >= line.length) throw new Error(`${where}: unterminated label set`);
    labels = parseLabels(line.slice(brace + 1, j), where);
    rest = line.slice(j + 1);
  } else {
    if (space < 0) throw new Error(`${where}: sample without value`);
    name = line.slice(0, space);
    rest = line.slice(space);
  }
  if (!METRIC_NAME.test(name)) throw new Error(`${where}: bad metric name "${name}"`);
  if (!/^[ \t]/.test(rest)) throw new Error(`${where}: no space before the value`);
  const fields = rest.trim().split(/[ \t]+/);
  if (fields.length < 1 || fields.length > 2)
    throw new Error(`${where}: expected "value [timestamp]", got "${rest.trim()}"`);
  if (!FLOAT.test(fields[0])) throw new Error(`${where}: bad value "${fields[0]}"`);
  if (fields[1] !== undefined && !TIMESTAMP.test(fields[1]))
    throw new Error(`${where}: bad timestamp "${fields[1]}"`);
  const value = /^[+-]?[Ii]nf$/.test(fields[0])
    ? (fields[0].startsWith('-') ? -Infinity : Infinity)
    : Number(fields[0]);
  return { name, labels, value };
}

// The family a sample belongs to: summaries and histograms have suffixed
// sample names.
function familyOf(name, families) {
  for (const [suffix, types] of [['_sum', ['summary', 'histogram']],
    ['_count', ['summary', 'histogram']], ['_bucket', ['histogram']]]) {
    if (name.endsWith(suffix)) {
      const base = name.slice(0, -suffix.length);
      if (types.includes(families.get(base)?.type)) return base;
    }
  }
  return name;
}

export function parseExposition(text) {
  if (!text.endsWith('\n')) throw new Error('the exposition must end with a newline');
  const families = new Map();
  const finished = new Set(); // families whose samples are over
  const series = new Set();
  let current = null;
  const family = (name) => {
    if (!families.has(name)) families.set(name, { type: 'untyped', typed: false, help: null, samples: [] });
    return families.get(name);
  };
  const lines = text.slice(0, -1).split('\n');
  lines.forEach((line, index) => {
    const where = `line ${index + 1} "${line}"`;
    if (line.trim() === '') return;
    if (line.startsWith('#')) {
      const m = /^#[ \t]+(HELP|TYPE)[ \t]+(\S+)(?:[ \t]+(.*))?$/.exec(line);
      if (!m) return; // another comment
      const [, kind, name, arg = ''] = m;
      if (!METRIC_NAME.test(name)) throw new Error(`${where}: bad metric name`);
      const f = family(name);
      if (f.samples.length) throw new Error(`${where}: ${kind} after the family's samples`);
      if (kind === 'HELP') {
        if (f.help !== null) throw new Error(`${where}: second HELP`);
        if (/\\[^\\n]/.test(arg.replace(/\\\\/g, ''))) throw new Error(`${where}: bad escape in HELP`);
        f.help = arg;
      } else {
        if (f.typed) throw new Error(`${where}: second TYPE`);
        if (!TYPES.has(arg)) throw new Error(`${where}: unknown type "${arg}"`);
        f.type = arg;
        f.typed = true;
      }
      return;
    }
    const s = splitSample(line, where);
    const name = familyOf(s.name, families);
    if (current !== name) {
      if (finished.has(name)) throw new Error(`${where}: samples of ${name} are not together`);
      if (current) finished.add(current);
      current = name;
    }
    const key = s.name + JSON.stringify(Object.entries(s.labels).sort());
    if (series.has(key)) throw new Error(`${where}: series given twice`);
    series.add(key);
    const f = family(name);
    if (f.type === 'counter' && !(s.value >= 0 && Number.isFinite(s.value)))
      throw new Error(`${where}: a counter must be finite and not negative`);
    f.samples.push(s);
  });
  for (const [name, f] of families) {
    delete f.typed;
    if (f.samples.length === 0) throw new Error(`${name}: HELP or TYPE without samples`);
  }
  return families;
}

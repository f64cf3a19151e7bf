// Rows packed as one UTF-8 text for a bulk insert on SQLite: their values one after the other,
// separated by NUL, which none of them may contain. One string (or its bytes) is cheap to build, to
// keep outside the JavaScript heap and to hand to a worker thread; a million rows' values held as
// strings in arrays until their batch is written outlive young-generation collections, and the
// collector copies them. Plain JavaScript: sqlite-statement-worker.mjs runs without a TypeScript
// loader and unpacks rows with it, as the main thread does when it writes them itself.

export const valueSeparator = '\0';

const statementText = new Map();

/** `into` ("insert into t (a, b)") followed by `rows` tuples of `width` placeholders; kept for reuse. */
function valuesSql(into, width, rows) {
  const key = `${into}\n${width}\n${rows}`;
  let text = statementText.get(key);
  if (text === undefined) {
    const tuple = `(${Array.from({ length: width }, () => '?').join(', ')})`;
    text = `${into} values ${Array.from({ length: rows }, () => tuple).join(', ')}`;
    if (statementText.size >= 64) statementText.clear();
    statementText.set(key, text);
  }
  return text;
}

/**
 * The statements inserting packed rows: each row binds `constants` first, then `fields` values read
 * from `bytes` (UTF-8, values separated by NUL), at most `perStatement` rows per statement.
 * @param {{ into: string, constants: unknown[], fields: number, bytes: Uint8Array, perStatement: number }} rows
 * @returns {Generator<{ sql: string, parameters: unknown[] }>}
 */
export function* packedRowStatements({ into, constants, fields, bytes, perStatement }) {
  const text = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8');
  const values = text === '' ? [] : text.split(valueSeparator);
  if (values.length % fields !== 0) throw new Error(`packed rows: ${values.length} values is not rows of ${fields}`);
  const width = constants.length + fields;
  const rows = values.length / fields;
  for (let start = 0; start < rows; start += perStatement) {
    const count = Math.min(perStatement, rows - start);
    const parameters = new Array(count * width);
    let at = 0;
    for (let row = start; row < start + count; row++) {
      for (const constant of constants) parameters[at++] = constant;
      for (let field = 0; field < fields; field++) parameters[at++] = values[row * fields + field];
    }
    yield { sql: valuesSql(into, width, count), parameters };
  }
}

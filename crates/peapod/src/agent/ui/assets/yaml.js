// JSON values as YAML text, the way `kubectl get -o yaml` shows an object: block mappings and
// sequences, plain scalars where YAML reads them back as the same string, quotes elsewhere.

const PLAIN_UNSAFE = /^$|^[\s\-?:,[\]{}#&*!|>'"%@`~]|[\s]$|: | #|^(true|false|yes|no|on|off|null|y|n)$|^[-+.\d]/i;

function scalar(value) {
  if (value === null || value === undefined) return 'null';
  if (typeof value !== 'string') return String(value);
  if (PLAIN_UNSAFE.test(value) || /[\n\t\u0000-\u001f\u007f]/.test(value)) {
    return JSON.stringify(value);
  }
  return value;
}

function isBlockText(value) {
  return typeof value === 'string' && value.includes('\n') && !/^\s/.test(value)
    && !/[\u0000-\u0008\u000b-\u001f\u007f]/.test(value) && !/ \n|\t/.test(value);
}

function blockText(value, indent) {
  const chomp = value.endsWith('\n') ? '' : '-';
  const body = value.replace(/\n$/, '').split('\n')
    .map((line) => (line ? indent + line : '')).join('\n');
  return `|${chomp}\n${body}`;
}

function isEmpty(value) {
  return Array.isArray(value) ? value.length === 0
    : value !== null && typeof value === 'object' && Object.keys(value).length === 0;
}

function emptyOf(value) {
  return Array.isArray(value) ? '[]' : '{}';
}

function key(name) {
  return scalar(name);
}

function lines(value, indent) {
  if (Array.isArray(value)) {
    return value.map((item) => {
      if (item !== null && typeof item === 'object' && !isEmpty(item)) {
        const nested = lines(item, `${indent}  `);
        return `${indent}- ${nested.slice(indent.length + 2)}`;
      }
      return `${indent}- ${inline(item, `${indent}  `)}`;
    }).join('\n');
  }
  return Object.entries(value).map(([name, item]) => {
    if (item !== null && typeof item === 'object' && !isEmpty(item)) {
      const nestedIndent = Array.isArray(item) ? indent : `${indent}  `;
      return `${indent}${key(name)}:\n${lines(item, nestedIndent)}`;
    }
    return `${indent}${key(name)}: ${inline(item, `${indent}  `)}`;
  }).join('\n');
}

function inline(value, indent) {
  if (value !== null && typeof value === 'object') return emptyOf(value);
  if (isBlockText(value)) return blockText(value, indent);
  return scalar(value);
}

/** The YAML text of a JSON value, ending with a newline. */
export function toYaml(value) {
  if (value === null || typeof value !== 'object' || isEmpty(value)) {
    return `${inline(value, '  ')}\n`;
  }
  return `${lines(value, '')}\n`;
}

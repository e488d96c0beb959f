// The one way the page's modules build DOM elements.

/**
 * An element with attributes, text and children: `null`, `undefined` and `false` attributes
 * are left out, `true` ones set empty; `null`, `undefined` and '' children are skipped, and
 * nested arrays of children flattened.
 */
export function el(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === null || value === undefined || value === false) continue;
    if (name === 'class') node.className = value;
    else node.setAttribute(name, value === true ? '' : String(value));
  }
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === '') continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

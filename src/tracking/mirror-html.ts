import { parse, serialize, type DefaultTreeAdapterMap } from 'parse5';

// The mirror page is the operator's HTML shown on Herald's own origin. Its CSP blocks scripts,
// forms, <base> and framing; a <meta http-equiv="refresh"> is not covered by any CSP directive
// (it would send the reader anywhere), so it is removed from the document, found by a real HTML
// parser (parse5: entities, case and odd spacing read as a browser reads them).

type ParentNode = DefaultTreeAdapterMap['parentNode'];
type ChildNode = DefaultTreeAdapterMap['childNode'];

export function withoutMetaRefresh(html: string): string {
  // Only an attribute literally named http-equiv can be a refresh: most pages skip the parser.
  if (!/http-equiv/i.test(html)) return html;
  const document = parse(html);
  let removed = 0;
  const visit = (parent: ParentNode): void => {
    const kept: ChildNode[] = [];
    for (const child of parent.childNodes) {
      if (isMetaRefresh(child)) {
        removed++;
        continue;
      }
      kept.push(child);
      if ('childNodes' in child) visit(child);
      if ('content' in child) visit(child.content);
    }
    parent.childNodes = kept;
  };
  visit(document);
  return removed === 0 ? html : serialize(document);
}

function isMetaRefresh(node: ChildNode): boolean {
  return (
    'tagName' in node &&
    node.tagName === 'meta' &&
    node.attrs.some(
      (attribute) => attribute.name === 'http-equiv' && attribute.value.trim().toLowerCase() === 'refresh',
    )
  );
}

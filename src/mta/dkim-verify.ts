import { createHash, verify, type KeyObject } from 'node:crypto';

// An independent DKIM verifier (RFC 6376 relaxed/relaxed, rsa-sha256 and RFC 8463 ed25519-sha256)
// working on the raw message as a receiver sees it. It shares no code with dkim.ts on purpose:
// tests check the signer against it, and operators can check a captured message with it.

export interface DkimCheck {
  domain: string;
  selector: string;
  algorithm: string;
  bodyHashOk: boolean;
  signatureOk: boolean;
}

export function verifyDkimSignatures(
  raw: string,
  publicKeyFor: (domain: string, selector: string, algorithm: string) => KeyObject,
): DkimCheck[] {
  const split = raw.indexOf('\r\n\r\n');
  const headerText = split < 0 ? raw : raw.slice(0, split);
  const body = split < 0 ? '' : raw.slice(split + 4);
  const fields = unfoldFields(headerText);
  return fields
    .filter((field) => field.name.toLowerCase() === 'dkim-signature')
    .map((field) => {
      const tags = parseTags(field.value);
      const algorithm = tags.get('a') ?? '';
      const domain = tags.get('d') ?? '';
      const selector = tags.get('s') ?? '';
      const canonicalBody = relaxedBody(body);
      const bodyHashOk = createHash('sha256').update(canonicalBody).digest('base64') === tags.get('bh');
      const signedNames = (tags.get('h') ?? '').split(':').map((name) => name.trim().toLowerCase());
      const remaining = fields.slice();
      let data = '';
      for (const name of signedNames) {
        // Bottom-up selection of repeated fields (RFC 6376 §5.4.2).
        for (let i = remaining.length - 1; i >= 0; i--) {
          const candidate = remaining[i]!;
          if (candidate.name.toLowerCase() === name) {
            data += `${relaxedHeader(candidate.name, candidate.value)}\r\n`;
            remaining.splice(i, 1);
            break;
          }
        }
      }
      const withoutB = field.value.replace(/(^|;)(\s*b\s*=)[^;]*/, '$1$2');
      data += relaxedHeader(field.name, withoutB);
      const signature = Buffer.from((tags.get('b') ?? '').replace(/\s+/g, ''), 'base64');
      const key = publicKeyFor(domain, selector, algorithm);
      const signatureOk =
        algorithm === 'ed25519-sha256'
          ? verify(null, createHash('sha256').update(data).digest(), key, signature)
          : verify('sha256', Buffer.from(data), key, signature);
      return { domain, selector, algorithm, bodyHashOk, signatureOk };
    });
}

function unfoldFields(headerText: string): { name: string; value: string }[] {
  const fields: { name: string; value: string }[] = [];
  for (const line of headerText.split('\r\n')) {
    if ((line.startsWith(' ') || line.startsWith('\t')) && fields.length > 0) {
      fields[fields.length - 1]!.value += `\r\n${line}`;
      continue;
    }
    const colon = line.indexOf(':');
    fields.push({ name: line.slice(0, colon), value: line.slice(colon + 1) });
  }
  return fields;
}

function parseTags(value: string): Map<string, string> {
  const tags = new Map<string, string>();
  for (const part of value.replace(/\r\n/g, '').split(';')) {
    const eq = part.indexOf('=');
    if (eq < 0) continue;
    tags.set(part.slice(0, eq).trim(), part.slice(eq + 1).trim());
  }
  return tags;
}

function relaxedHeader(name: string, value: string): string {
  const unfolded = value.split('\r\n').join('');
  const collapsed = unfolded
    .split(/[ \t]+/)
    .join(' ')
    .trim();
  return `${name.trim().toLowerCase()}:${collapsed}`;
}

function relaxedBody(body: string): string {
  const lines = body.split('\r\n').map((line) =>
    line
      .split(/[ \t]+/)
      .join(' ')
      .replace(/ $/, ''),
  );
  while (lines.length > 0 && lines[lines.length - 1] === '') lines.pop();
  return lines.length === 0 ? '' : `${lines.join('\r\n')}\r\n`;
}

import { describe, expect, it } from 'vitest';
import { parseConfig } from '../config/load.ts';

// tracking.baseUrl and tracking.unsubscribeMailDomain are written as they are into every message:
// links, the pixel and the List-Unsubscribe header line. A value read from an environment variable
// with its trailing newline, or pasted with a quote, split the header ("List-Unsubscribe:
// <https://t.example.com\r\nBcc: …") and broke out of the href attribute; it is refused at start.

const parse = (tracking: Record<string, unknown>) => () => parseConfig({ tracking }, 'herald.yaml');

describe('tracking base URL and unsubscribe mail domain', () => {
  it.each([
    ['baseUrl', 'https://t.example.com\n'],
    ['baseUrl', 'https://t.example.com\r\nBcc: someone@example.net'],
    ['baseUrl', 'https://t.example.com/"><img src=x>'],
    ['baseUrl', 'https://t.example.com/ x'],
    ['baseUrl', 't.example.com'],
    ['baseUrl', 'javascript:alert(1)//'],
    ['unsubscribeMailDomain', 'u.example.com>\r\nX-Injected: yes'],
    ['unsubscribeMailDomain', 'u.example.com\n'],
    ['unsubscribeMailDomain', 'unsubscribe@u.example.com'],
  ])('refuses %s %j, naming the key', (key, value) => {
    expect(parse({ [key]: value })).toThrow(new RegExp(`herald\\.yaml: tracking\\.${key}: must be`));
  });

  it.each([
    { baseUrl: '' },
    { baseUrl: 'https://t.example.com' },
    { baseUrl: 'https://t.example.com/track/' },
    { baseUrl: 'http://[::1]:8090' },
    { unsubscribeMailDomain: 'unsubscribe.example.com' },
  ])('accepts %j', (tracking) => {
    expect(parse(tracking)).not.toThrow();
  });
});

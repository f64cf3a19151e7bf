// The few pages the tracking server shows. Plain, self-contained, no scripts, nothing from the request.

function page(title: string, body: string): string {
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1"><meta name="robots" content="noindex"><title>${title}</title>
<style>body{font-family:system-ui,sans-serif;max-width:32rem;margin:4rem auto;padding:0 1rem;color:#222}button{font-size:1rem;padding:.5rem 1rem}</style></head><body>${body}</body></html>`;
}

export const notFoundPage = page(
  'Link not available',
  '<h1>Link not available</h1><p>This link is unknown or has expired.</p>',
);

export const unavailablePage = page(
  'Temporarily unavailable',
  '<h1>Temporarily unavailable</h1><p>Please try again in a moment.</p>',
);

export const badRequestPage = page('Bad request', '<h1>Bad request</h1>');

export const uriTooLongPage = page('Link too long', '<h1>Link too long</h1><p>This link is not one of ours.</p>');

/** GET /u/: a confirmation, never an unsubscribe (link pre-fetchers GET every link they see). */
export const unsubscribeConfirmPage = page(
  'Unsubscribe',
  '<h1>Unsubscribe</h1><p>Do you want to stop receiving these emails?</p><form method="post"><input type="hidden" name="List-Unsubscribe" value="One-Click"><button type="submit">Unsubscribe</button></form>',
);

export const unsubscribedPage = page(
  'Unsubscribed',
  '<h1>You are unsubscribed</h1><p>You will not receive these emails any more.</p>',
);

/** GIF89a, 1×1, transparent. */
export const transparentGif = Buffer.from('R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7', 'base64');

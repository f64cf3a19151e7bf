// The message the send benchmarks send: ~2 KB personalized (HTML + text), and its recipients.

/** `count` recipients `user<i>@<domain>` with the five personalization values the content uses. */
export function benchRecipients(count: number, domain: string, prefix = 'user') {
  return Array.from({ length: count }, (_, i) => ({
    email: `${prefix}${i}@${domain}`,
    data: {
      first_name: `First${i}`,
      last_name: `Last${i}`,
      city: ['Lyon', 'Paris', 'Nantes', 'Lille'][i % 4],
      points: i * 7,
      offer: `OFFER-${(i * 7919) % 100000}`,
    },
  }));
}

/** A ~2 KB personalized message (HTML + text), as bench/send.ts has always sent. */
export function benchContent() {
  const paragraph =
    'Our spring collection is here, with new colours and fabrics chosen for the season. ' +
    'As a member you get early access before everyone else, and free delivery on every order. ';
  const html =
    `<!doctype html><html><head><meta charset="utf-8"><title>Spring offer</title></head><body style="font-family:Arial,sans-serif;color:#222">` +
    `<table width="100%" cellpadding="0" cellspacing="0"><tr><td align="center"><table width="600"><tr><td>` +
    `<h1 style="font-size:22px">Hello {{ first_name }} {{ last_name }},</h1>` +
    `<p>${paragraph}</p><p>${paragraph}</p>` +
    `<p>Your store in <b>{{ city }}</b> has prepared a selection for you. You have <b>{{ points }}</b> points.</p>` +
    `<p style="text-align:center"><a href="https://shop.brand.test/offer?code={{ offer }}" style="background:#0a7;color:#fff;padding:12px 24px;text-decoration:none">Use code {{ offer }}</a></p>` +
    `<p>${paragraph}</p>` +
    `<p style="font-size:11px;color:#888">You receive this email because you subscribed at brand.test. <a href="https://brand.test/unsubscribe">Unsubscribe</a>.</p>` +
    `</td></tr></table></td></tr></table></body></html>`;
  const text = `Hello {{ first_name }} {{ last_name }},\n\n${paragraph}\n\nYour store in {{ city }} has prepared a selection for you. You have {{ points }} points.\nUse code {{ offer }}: https://shop.brand.test/offer?code={{ offer }}\n\nUnsubscribe: https://brand.test/unsubscribe\n`;
  return {
    subject: '{{ first_name }}, your spring offer is here',
    html,
    text,
    fromName: 'Brand',
    fromAddress: 'news@brand.test',
  };
}

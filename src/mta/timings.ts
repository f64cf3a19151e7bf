// Durations the MTA reports as it works (the metrics registry implements this; tests and benches
// leave it out). Called on the hot path: implementations must be cheap and never throw.

export interface MtaTimings {
  /** Opening one SMTP session: TCP connect, greeting, EHLO, STARTTLS; `opened` false when it failed. */
  smtpSession(mxHost: string, seconds: number, opened: boolean): void;
  /** One SMTP transaction: MAIL FROM to the reply after the final dot (or the refusal). */
  smtpTransaction(mxHost: string, seconds: number): void;
  /** Computing one message's DKIM signatures (in a worker thread or not). */
  dkimSigning(seconds: number): void;
}

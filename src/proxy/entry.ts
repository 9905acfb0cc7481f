/*
 * One command's place in a client's reply order. Every command that will get
 * a reply has an Entry in the connection's reply queue, in request order;
 * forwarded ones also wait in the upstream reader (own connection) or on a
 * shared connection. An entry is done once all its replies are in; bytes
 * leave only from the head of the queue (see connection.ts).
 */
import type { Reply } from '../resp/writer.js';
import type { SharedOwner } from '../upstream/shared-upstream.js';

/**
 * Transforms the complete reply of a forwarded command; may update connection
 * state. A promise holds the entry (and every reply after it) until it settles.
 */
export type Hook = (reply: Buffer) => Buffer | Reply | Promise<Buffer>;

export interface Entry {
  /** Set while the entry waits on a shared upstream connection. */
  owner: SharedOwner | undefined;
  /** Upstream replies still expected; 0 for local entries. */
  expect: number;
  /** For UNSUBSCRIBE without arguments: computed once every older reply has arrived. */
  lazyExpect: (() => number) | undefined;
  hook: Hook | undefined;
  /** Reply bytes held back while an older entry is incomplete. */
  out: (Buffer | Reply)[] | undefined;
  done: boolean;
  closeAfter: boolean;
  /** A local command: forwarded commands after it wait for it. */
  local: boolean;
  /** A (P|S)(UN)SUBSCRIBE: RESP3 confirmation pushes are its replies. */
  pubsub: boolean;
  /** Local commands waiting for this (state-changing) entry before they start. */
  waiters: (() => void)[] | undefined;
  /**
   * A request one of our commands sent on the client's behalf (local-run.ts):
   * its reply goes here, not to the client, and the entry is in no reply queue.
   */
  internal: ((reply: Buffer) => void) | undefined;
  /** Hook results still being computed (a transaction with our commands in it). */
  pending: number;
}

export function newEntry(expect: number, hook?: Hook): Entry {
  return {
    owner: undefined,
    expect,
    lazyExpect: undefined,
    hook,
    out: undefined,
    done: false,
    closeAfter: false,
    local: false,
    pubsub: false,
    waiters: undefined,
    internal: undefined,
    pending: 0,
  };
}

// The differences scripts/redis-suite.mjs accepts between Redis's own test suite run against
// redis-server directly and through semcache, each with its reason (docs/redis-suite.md).
// { unit, test: exact name or RegExp ('(exception)' for a unit ended by one), modes, reason }
export const ALLOWED = [];

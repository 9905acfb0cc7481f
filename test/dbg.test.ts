import { it } from 'vitest';
import { startRedis, startProxy } from './helpers/servers.js';
import { testCommands } from './helpers/test-commands.js';
import { RawClient, cmd } from './helpers/raw.js';
it('dbg', async () => {
  const r = await startRedis();
  const p = await startProxy(r.port, {}, testCommands);
  const c = await RawClient.open(p.port);
  c.write(Buffer.concat([cmd('MULTI'), cmd('TESTMAP', 'x'), cmd('EXEC')]));
  await new Promise((res) => setTimeout(res, 500));
  console.log(JSON.stringify(c.received.toString()));
  await p.stop(); await r.stop();
});

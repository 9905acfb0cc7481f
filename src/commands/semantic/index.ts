/* The semantic-cache commands, bound to one engine. */
import type { SemanticCache } from '../../semantic/engine.js';
import type { CommandSpec } from '../types.js';
import { semdel, semembed, semflush, seminfo } from './admin.js';
import { semget } from './semget.js';
import { semindex } from './semindex.js';
import { semns } from './semns.js';
import { semsearch } from './semsearch.js';
import { semset } from './semset.js';

export function semanticCommands(engine: SemanticCache): CommandSpec[] {
  return [semset, semget, semindex, semsearch, semdel, semflush, semembed, seminfo, semns].map(
    (make) => make(engine),
  );
}

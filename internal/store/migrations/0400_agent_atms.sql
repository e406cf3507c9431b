-- The agent gateway's registry (issue 15): which ATM belongs to which branch.
-- A branch agent (its certificate's CN is the branch id) may drive only the
-- ATMs pinned to its branch here; an ATM is pinned to one branch at a time.
-- Times are Unix ms.
CREATE TABLE IF NOT EXISTS agent_atms (
  atm_id TEXT PRIMARY KEY,         -- the bank's terminal id, e.g. ATM-0101
  branch TEXT NOT NULL,            -- the branch id (agent certificate CN)
  assigned_ms BIGINT NOT NULL
);
CREATE INDEX IF NOT EXISTS agent_atms_branch ON agent_atms (branch);

-- Which ork process recorded each attempt (a token unique to one execution
-- of a run), so that one process never overwrites another's attempt. Empty
-- for attempts recorded before.
ALTER TABLE attempts ADD COLUMN owner TEXT NOT NULL DEFAULT '';

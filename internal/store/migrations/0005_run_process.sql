-- Who runs a run, beyond its pid: on Linux the boot id and the process's
-- start time, so that a pid reused after a crash or a reboot is not taken for
-- the ork process that ran it. Empty where ork cannot tell, and for runs
-- recorded before.
ALTER TABLE runs ADD COLUMN proc TEXT NOT NULL DEFAULT '';

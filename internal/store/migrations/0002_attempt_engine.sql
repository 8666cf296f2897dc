-- The WebAssembly engine that ran each attempt (wazero or wasmtime); empty
-- for attempts recorded before ork had more than one.
ALTER TABLE attempts ADD COLUMN engine TEXT NOT NULL DEFAULT '';

-- Custom header values of outbound endpoints are credentials (a receiver's bearer token, a
-- basic-auth pair), so they move to the vault: secret `outbound/{endpoint}/headers`, a JSON
-- object of name -> value. The row keeps the names, shown by the API, and the vault version,
-- so the dispatcher sees a change.
--
-- Only the server can encrypt (it holds the vault key), so SQL cannot move the values: at
-- startup the server stores each row's `headers` in the vault and resets the column to '{}'
-- (`Endpoints::move_legacy_headers`). The column stays until a later migration drops it, once
-- every deployment has started with this version.
ALTER TABLE webhook_endpoints ADD COLUMN header_names TEXT NOT NULL DEFAULT '[]';
ALTER TABLE webhook_endpoints ADD COLUMN headers_version INTEGER;

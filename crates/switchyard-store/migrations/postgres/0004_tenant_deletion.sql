-- A deleted tenant keeps its row (and so its id) until the retention window has passed;
-- its data keys are destroyed and its API keys revoked at deletion time.
ALTER TABLE tenants ADD COLUMN deleted_at TIMESTAMPTZ;
CREATE INDEX tenants_deleted ON tenants (deleted_at) WHERE deleted_at IS NOT NULL;

-- Signing orders of kind 'enrol' (issue 13): what the bank gives back to the
-- device that completed the order (the certificate the bank CA issued for
-- the token's new key), returned once with the signature's answer.
ALTER TABLE sign_orders ADD COLUMN result_data BYTEA;

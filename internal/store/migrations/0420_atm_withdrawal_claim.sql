-- A withdrawal session's approval claim (issue 15): the approval that wins
-- the guarded UPDATE … SET claim = ? WHERE state = 'QR_SHOWN' AND claim = ''
-- is the only one that asks for the authorization and the hold; a parallel
-- approval of the same QR is refused before it authorizes anything. A
-- refused approval clears its claim (the QR may be approved again); one
-- whose process died keeps it until the session expires.
ALTER TABLE atm_withdrawals ADD COLUMN claim TEXT NOT NULL DEFAULT '';

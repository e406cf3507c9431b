package i18n

// passportCatalogue is the passport's enrolment pages (authsvc
// orders_enrol.go) and the signing orders' sentences (the poll's state, an
// order's or a tool's refusal by its stable code), kept apart from the
// login pages' keys so that they are edited side by side.
var passportCatalogue = map[string][2]string{
	// enrolment (/account/enrol, the enrolled page, their message pages)
	"pp.enrol_signin_title":   {"请先登录", "Sign in first"},
	"pp.enrol_signin":         {"请先用密码和短信验证码登录网上银行，再回到这里绑定U盾。", "Sign in to the online bank with your password and an SMS code first, then come back here to enrol your U-shield."},
	"pp.enrol_unknown_title":  {"未知的工具", "Unknown tool"},
	"pp.enrol_unknown":        {"这里不能绑定此工具：请选择%s。", "This tool cannot be enrolled here: choose %s."},
	"pp.enrol_or":             {"或", "or"},
	"pp.enrol_text":           {"为通行证 %[2]s 绑定新的%[1]s", "Enrol a new %s for %s"},
	"pp.enrol_prompt":         {"请插入新的%s：银行安全助手将在令牌上生成密钥，并由银行签发证书。", "Insert the new %s: the bank's security helper makes its key on the token and the bank certifies it."},
	"pp.enrolled_title":       {"绑定成功", "Enrolled"},
	"pp.enrolled":             {"您的%s已绑定（证书 %s）：现在可用于通行证和银行的认证级别 %d 确认。它已列在您的认证工具中；如果遗失，请立即在那里挂失。", "Your %s is enrolled (certificate %s): it now answers the passport's and the bank's confirmations at level %d. It is on your tools list; if you lose it, report it lost there at once."},
	"pp.enrol_pending_title":  {"尚未完成", "Not finished yet"},
	"pp.enrol_pending":        {"银行安全助手尚未完成，请返回等待，或重新打开链接。", "The security helper has not finished; go back and wait, or open the link again."},
	"pp.not_enrolled_title":   {"未绑定", "Not enrolled"},
	"pp.enrol_refused":        {"银行拒绝了此次绑定：%s 请重新开始。", "The bank refused the enrolment: %s Start again."},
	"pp.not_cancelled_title":  {"未取消", "Not cancelled"},
	"pp.cancelled_title":      {"已取消", "Cancelled"},
	"pp.enrol_nothing":        {"没有绑定任何工具。", "Nothing was enrolled."},
	"pp.try_again_title":      {"请重试", "Try again"},
	"pp.busy":                 {"服务繁忙，请稍后再试。", "The service is busy. Try again in a moment."},
	"pp.tool_not_started":     {"%s无法启动：%s", "The %s could not start: %s"},
	"pp.tool_not_started_try": {"%s无法启动，请重试。", "The %s could not start; try again."},

	// a platform's request the passport cannot answer
	"pp.bad_response_mode": {"平台要求的 response_mode 为 %s；通行证只在 query 或 fragment 中答复。请告知平台的运营方。", "The platform asked for response_mode %s; the passport answers in the query or the fragment only. Tell the platform's operator."},

	// a signing order's state, polled by the page
	"order.waiting":  {"正在等待您的%s。", "Waiting for your %s."},
	"order.opened":   {"已在您的设备上打开：请在设备上核对内容并确认。", "Opened on your device: check the text there and confirm."},
	"order.signed":   {"已签名，正在继续…", "Signed. Continuing…"},
	"order.refused":  {"签名被拒绝：%s", "The signature was refused: %s"},
	"order.a_tool":   {"工具", "tool"},
	"order.fallback": {"无法核验签名。", "the signature could not be checked."},

	// an order's or a tool's refusal by its stable code (authsvc/orders
	// Code, authsvc/apierr): pp.err.<code>
	"pp.err.unknown_order":     {"没有这个签名指令。", "No such signing order."},
	"pp.err.order_expired":     {"签名指令已过期，请在页面上重新开始。", "The signing order has expired; start again on the page."},
	"pp.err.order_cancelled":   {"签名指令已取消，请在页面上重新开始。", "The signing order was cancelled; start again on the page."},
	"pp.err.order_done":        {"签名指令已经签过。", "The signing order was already signed."},
	"pp.err.order_failed":      {"签名指令失败，请在页面上重新开始。", "The signing order failed; start again on the page."},
	"pp.err.order_in_use":      {"签名指令已在另一台设备上打开。", "The signing order is already open on another device."},
	"pp.err.order_not_open":    {"签名指令不是在这台设备上打开的。", "The signing order was not opened on this device."},
	"pp.err.order_pending":     {"签名指令尚未签名。", "The signing order is not signed yet."},
	"pp.err.order_collected":   {"签名指令的结果已经使用过。", "The signing order's result was already used."},
	"pp.err.qr_stale":          {"二维码已过期：请重新扫描页面上的二维码。", "The QR code is too old: scan the code on the page again."},
	"pp.err.qr_malformed":      {"这不是签名指令的二维码。", "This is not a QR code of a signing order."},
	"pp.err.bad_text":          {"指令内容不是最多 1024 字节的可打印文字。", "The order text is not printable text of at most 1024 bytes."},
	"pp.err.other_transaction": {"此挑战是为另一笔交易生成的。", "The challenge was made for another transaction."},
	"pp.err.wrong_answer":      {"回答不正确。", "The answer is not correct."},
	"pp.err.locked":            {"此认证工具因多次失败已锁定。", "This authentication tool is locked after too many failures."},
	"pp.err.expired":           {"挑战已过期，请重新开始。", "The challenge has expired; start again."},
	"pp.err.used":              {"挑战已使用过，请重新开始。", "The challenge was already used; start again."},
	"pp.err.unknown_challenge": {"没有这个挑战。", "No such challenge."},
	"pp.err.not_enrolled":      {"您没有这种认证工具。", "The customer has no such authentication tool."},
	"pp.err.revoked":           {"此认证工具已注销或已挂失。", "The authentication tool was revoked or reported lost."},
	"pp.err.rate_limited":      {"请求过多，请稍后再试。", "Too many requests; wait before trying again."},
	"pp.err.replay":            {"此验证码已使用过，请等待下一个。", "This code was already used; wait for the next one."},
	"pp.err.bad_response":      {"应答格式不正确。", "The response is malformed."},
	"pp.err.unavailable":       {"服务暂时不可用，请稍后再试。", "The service is temporarily unavailable; try again in a moment."},
	"pp.err.bad_attestation":   {"令牌对新密钥的证明缺失或无效：请绑定银行认可厂商的正品令牌。", "The token's attestation of its new key is missing or not valid: enrol a genuine token of a vendor the bank accepts."},
	// a device's reason for declining (authsvc/orders DeviceReasons)
	"pp.err.declined":      {"您在设备上拒绝了。", "You declined on your device."},
	"pp.err.token_removed": {"签名过程中令牌被拔出。", "The token was removed during the signature."},
	"pp.err.pin_blocked":   {"令牌的 PIN 已锁定。", "The token's PIN is blocked."},
	"pp.err.wrong_pin":     {"令牌的 PIN 不正确。", "The token's PIN was wrong."},
	"pp.err.no_token":      {"没有找到能答复此指令的令牌。", "No token that can answer this order was found."},
}

// Refusal says the refusal of an order or a tool with the stable code
// (pp.err.<code>) in p's language; fallback (the English sentence that came
// with the error, e.g. a lock's "until when") for a code the catalogue
// does not know, and in English when it is more precise.
func (p Printer) Refusal(code, fallback string) string {
	if !Has("pp.err."+code) || (p.Lang == EN && fallback != "") {
		return fallback
	}
	return p.T("pp.err." + code)
}

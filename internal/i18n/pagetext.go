package i18n

import "regexp"

// The passport's message pages (a sign-in expired, out of order, signed
// out, a tool that could not start, an enrolment's outcome) are written in
// English where they happen (authsvc: s.message(w, status, title, message,
// code)); Page says each known title and sentence in the page's language,
// like Prompt does for the tools. A sentence not known stays as it came.
var pageTexts = []pattern{
	// titles
	{re: regexp.MustCompile(`^Sign-in expired$`), zh: "登录已过期"},
	{re: regexp.MustCompile(`^Sign-in not finished$`), zh: "登录未完成"},
	{re: regexp.MustCompile(`^Sign-in not finished here$`), zh: "登录未在此完成"},
	{re: regexp.MustCompile(`^Sign-in not started here$`), zh: "登录不是在此开始的"},
	{re: regexp.MustCompile(`^Sign-in already answered$`), zh: "登录已答复"},
	{re: regexp.MustCompile(`^Sign-in already finished$`), zh: "登录已完成"},
	{re: regexp.MustCompile(`^Sign-in request refused$`), zh: "登录请求被拒绝"},
	{re: regexp.MustCompile(`^Sign-in failed$`), zh: "登录失败"},
	{re: regexp.MustCompile(`^Sign-in out of order$`), zh: "登录步骤顺序不对"},
	{re: regexp.MustCompile(`^Try again$`), zh: "请重试"},
	{re: regexp.MustCompile(`^Signed out$`), zh: "已退出"},
	{re: regexp.MustCompile(`^Not signed out$`), zh: "未退出"},
	{re: regexp.MustCompile(`^Sign-out request not understood$`), zh: "无法识别的退出请求"},
	{re: regexp.MustCompile(`^Sign-out request refused$`), zh: "退出请求被拒绝"},
	{re: regexp.MustCompile(`^Sign in first$`), zh: "请先登录"},
	{re: regexp.MustCompile(`^Unknown tool$`), zh: "未知的工具"},
	{re: regexp.MustCompile(`^Enrolled$`), zh: "绑定成功"},
	{re: regexp.MustCompile(`^Not finished yet$`), zh: "尚未完成"},
	{re: regexp.MustCompile(`^Not enrolled$`), zh: "未绑定"},
	{re: regexp.MustCompile(`^Not cancelled$`), zh: "未取消"},
	{re: regexp.MustCompile(`^Cancelled$`), zh: "已取消"},
	// sentences
	{re: regexp.MustCompile(`^This sign-in has expired, was already answered or is unknown\. Go back to the platform and start again\.$`), zh: "此次登录已过期、已答复或无法识别。请返回平台重新开始。"},
	{re: regexp.MustCompile(`^This sign-in is not finished\. Go back to the platform and start again\.$`), zh: "此次登录尚未完成。请返回平台重新开始。"},
	{re: regexp.MustCompile(`^This sign-in was finished in another browser\. Nothing was sent to the platform\. If someone sent you a sign-in link, do not use it; go to the platform yourself\.$`), zh: "此次登录是在另一个浏览器中完成的，没有向平台发送任何内容。如果有人发给您登录链接，请不要使用，请自己打开平台。"},
	{re: regexp.MustCompile(`^This browser is not signed in as the customer who finished this sign-in\. Go back to the platform and start again\.$`), zh: "此浏览器登录的不是完成这次登录的客户。请返回平台重新开始。"},
	{re: regexp.MustCompile(`^This sign-in was already answered\. Go back to the platform\.$`), zh: "此次登录已答复。请返回平台。"},
	{re: regexp.MustCompile(`^The answer to the platform could not be made\. Go back to the platform and start again\.$`), zh: "无法生成给平台的答复。请返回平台重新开始。"},
	{re: regexp.MustCompile(`^This sign-in has expired or is unknown\. Go back to the platform and start again\.$`), zh: "此次登录已过期或无法识别。请返回平台重新开始。"},
	{re: regexp.MustCompile(`^This sign-in was started in another browser tab or window\. Go back to the platform and start again\.$`), zh: "此次登录是在另一个浏览器标签页或窗口中开始的。请返回平台重新开始。"},
	{re: regexp.MustCompile(`^This sign-in has expired\. Go back to the platform and start again\.$`), zh: "此次登录已过期。请返回平台重新开始。"},
	{re: regexp.MustCompile(`^This sign-in was finished in another browser\. If someone sent you a sign-in link, do not use it; go to the platform yourself\.$`), zh: "此次登录是在另一个浏览器中完成的。如果有人发给您登录链接，请不要使用，请自己打开平台。"},
	{re: regexp.MustCompile(`^This sign-in was already completed\. Go back to the platform\.$`), zh: "此次登录已完成。请返回平台。"},
	{re: regexp.MustCompile(`^You are not signed in on this browser\.$`), zh: "您在此浏览器上未登录。"},
	{re: regexp.MustCompile(`^You are signed out of the bank on this browser\.$`), zh: "您已在此浏览器上退出银行的所有服务。"},
	{re: regexp.MustCompile(`^The sign-out form is stale; open the sign-out page again\.$`), zh: "退出表单已过期，请重新打开退出页面。"},
	{re: regexp.MustCompile(`^Start the sign-in again from the platform\.$`), zh: "请从平台重新开始登录。"},
	{re: regexp.MustCompile(`^The service is busy\. Try again in a moment\.$`), zh: "服务繁忙，请稍后再试。"},
	{re: regexp.MustCompile(`^The sign-out request is malformed\. Go back to the platform and sign out there again\.$`), zh: "退出请求格式不正确。请返回平台重新退出。"},
	{re: regexp.MustCompile(`^The sign-out request is not valid\. Go back to the platform and sign out there again\.$`), zh: "退出请求无效。请返回平台重新退出。"},
	{re: regexp.MustCompile(`^Sign in to the online bank with your password and an SMS code first, then come back here to enrol your U-shield\.$`), zh: "请先用密码和短信验证码登录网上银行，再回到这里绑定U盾。"},
	{re: regexp.MustCompile(`^This tool cannot be enrolled here: choose ushield or ushield2\.$`), zh: "这里不能绑定此工具：请选择 U盾或二代U盾。"},
	{re: regexp.MustCompile(`^The security helper has not finished; go back and wait, or open the link again\.$`), zh: "银行安全助手尚未完成，请返回等待，或重新打开链接。"},
	{re: regexp.MustCompile(`^Nothing was enrolled\.$`), zh: "没有绑定任何工具。"},
	{re: regexp.MustCompile(`^This signature was already used\. Go back to the platform\.$`), zh: "此签名已使用过。请返回平台。"},
	{re: regexp.MustCompile(`^Your (U-shield|U-shield with display|PIV card) is enrolled \(certificate ([0-9a-f]+)\): it now answers the passport's and the bank's confirmations at level (\d)\. It is on your tools list; if you lose it, report it lost there at once\.$`),
		zh: "您的%[1]s已绑定（证书 %[2]s）：现在可用于通行证和银行的认证级别 %[3]s 确认。它已列在您的认证工具中；如果遗失，请立即在那里挂失。", tools: []int{1}},
	{re: regexp.MustCompile(`^Insert the new (U-shield|U-shield with display|PIV card): the bank's security helper makes its key on the token and the bank certifies it\.$`),
		zh: "请插入新的%[1]s：银行安全助手将在令牌上生成密钥，并由银行签发证书。", tools: []int{1}},
	{re: regexp.MustCompile(`^Your (\S+) is locked after too many failed attempts\.$`), zh: "您的%[1]s因多次尝试失败已锁定。", tools: []int{1}},
}

// Page says a passport message page's title or sentence in p's language.
func (p Printer) Page(s string) string { return say(p, pageTexts, s) }

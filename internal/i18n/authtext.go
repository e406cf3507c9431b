package i18n

import (
	"fmt"
	"regexp"
)

// The authentication tools and the transaction service speak English: a
// challenge's prompt ("Code sent to 138****5678") and the transaction text
// ("Transfer 1,000.00 yuan to 6299…0002 from 6299…0001") are made by them
// (authsvc/sms, gridcard, oath, ushield, pivauth, phone; txauth.Text). The
// pages show them in the customer's language: each known sentence is
// matched here and said again in Chinese with the same facts. (An intent
// the platform authorized in Chinese has its text in Chinese already, as
// the customer's tool shows and signs it: that one passes unchanged; the
// English ones are the alerts' and those of intents without a language.) A sentence
// not known is shown as it came (English), never dropped.

type pattern struct {
	re *regexp.Regexp
	zh string // %[n]s are the submatches
	// tools are the submatches (1-based) that name a tool (sms, password,
	// otp…): said with the catalogue's tool.* name.
	tools []int
}

var prompts = []pattern{
	{re: regexp.MustCompile(`^Code sent to (\S+)$`), zh: "验证码已发送至 %[1]s"},
	{re: regexp.MustCompile(`^Enter the codes of cells (.+) of your grid card ending (\S+)$`), zh: "请输入密码卡（尾号 %[2]s）上 %[1]s 格中的数字"},
	{re: regexp.MustCompile(`^Enter the code shown on your token (\S+)$`), zh: "请输入动态口令牌 %[1]s 上显示的口令"},
	{re: regexp.MustCompile(`^Type (\S+) on token (\S+): challenge, payee's last digits, amount in fen$`), zh: "请在令牌 %[2]s 上输入 %[1]s（挑战码、收款账号末几位、金额（分）），再输入令牌显示的应答码"},
	{re: regexp.MustCompile(`^Type (\S+) on token (\S+) and enter the response$`), zh: "请在令牌 %[2]s 上输入 %[1]s，再输入令牌显示的应答码"},
	{re: regexp.MustCompile(`^Insert your U-shield and sign with it$`), zh: "请插入U盾并签名"},
	{re: regexp.MustCompile(`^Check the transaction on your U-shield's display and press its confirm button$`), zh: "请在U盾屏幕上核对交易，然后按U盾上的确认键"},
	{re: regexp.MustCompile(`^Insert your PIV card, check the text and sign with your PIN$`), zh: "请插入 PIV 卡，核对内容后输入 PIN 签名"},
	{re: regexp.MustCompile(`^Open the bank's app on your phone and scan the code$`), zh: "请打开手机上的银行 App 扫描二维码"},
}

// txTexts say txauth.Text's English sentences as txauth.Text says them for
// an intent in Chinese (TestText in authsvc/txauth holds the two together).
var txTexts = []pattern{
	{re: regexp.MustCompile(`^Transfer (\S+) yuan to (\S+) from (\S+)$`), zh: "向 %[2]s 转账 %[1]s 元（付款账户 %[3]s）"},
	{re: regexp.MustCompile(`^Withdraw (\S+) yuan at (\S+) from (\S+)$`), zh: "在 %[2]s 取款 %[1]s 元（取款账户 %[3]s）"},
	{re: regexp.MustCompile(`^Send (\S+) yuan to (\S+) from (\S+)$`), zh: "向好友 %[2]s 转账 %[1]s 元（付款账户 %[3]s）"},
	{re: regexp.MustCompile(`^Pay your share of (\S+) yuan to (\S+) from (\S+)$`), zh: "向 %[2]s 支付 AA 分摊款 %[1]s 元（付款账户 %[3]s）"},
	{re: regexp.MustCompile(`^Refund (\S+) yuan to (\S+) from (\S+)$`), zh: "向 %[2]s 退款 %[1]s 元（退款账户 %[3]s）"},
	{re: regexp.MustCompile(`^Pay (\S+) yuan to (\S+) from (\S+)$`), zh: "向 %[2]s 付款 %[1]s 元（付款账户 %[3]s）"},
}

// labels are the tools' own English labels (authn factors' Label) by
// their names.
var labels = map[string]string{"U-shield": "ushield", "U-shield with display": "ushield2", "PIV card": "piv", "SMS code": "sms",
	"Grid card": "gridcard", "Dynamic-password token": "otp", "phone app": "phone"}

func say(p Printer, list []pattern, s string) string {
	if p.Lang == EN {
		return s
	}
	for _, pt := range list {
		if m := pt.re.FindStringSubmatch(s); m != nil {
			args := make([]any, len(m)-1)
			for i, v := range m[1:] {
				args[i] = v
			}
			for _, i := range pt.tools {
				name := m[i]
				if n, ok := labels[name]; ok {
					name = n
				}
				if Has("tool." + name) {
					args[i-1] = p.T("tool." + name)
				}
			}
			return fmt.Sprintf(pt.zh, args...)
		}
	}
	return s
}

// Prompt says a tool's challenge prompt in p's language.
func (p Printer) Prompt(s string) string { return say(p, prompts, s) }

// TxText says a transaction text (txauth.Text) in p's language.
func (p Printer) TxText(s string) string { return say(p, txTexts, s) }

// Tool names a tool (a factor's name: sms, gridcard, otp, ushield,
// ushield2, piv, phone) in p's language; fallback (the tool's own English
// label) in English or for a tool the catalogue does not know.
func (p Printer) Tool(name, fallback string) string {
	if p.Lang == EN || !Has("tool."+name) {
		return fallback
	}
	return p.T("tool." + name)
}

// Platform names one of the bank's platforms (an OIDC client id: ebank,
// mall, messenger) in p's language; another client by its id.
func (p Printer) Platform(id string) string {
	if Has("platform." + id) {
		return p.T("platform." + id)
	}
	return id
}

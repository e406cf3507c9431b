package i18n

import "testing"

// The tools' English prompts and txauth's transaction texts are said in
// Chinese with the same facts; English stays as it came, and a sentence
// not known is shown as it came rather than dropped.
func TestPromptsAndTexts(t *testing.T) {
	t.Parallel()
	zh, en := In(ZH, nil), In(EN, nil)
	cases := []struct {
		name, in, want string
		say            func(Printer, string) string
	}{
		{"sms", "Code sent to 138****5678", "验证码已发送至 138****5678", Printer.Prompt},
		{"grid card", "Enter the codes of cells B3, F7, A1 of your grid card ending 0042", "请输入密码卡（尾号 0042）上 B3, F7, A1 格中的数字", Printer.Prompt},
		{"otp", "Enter the code shown on your token …4321", "请输入动态口令牌 …4321 上显示的口令", Printer.Prompt},
		{"ocra tx", "Type 12345678901234 on token OC1: challenge, payee's last digits, amount in fen", "请在令牌 OC1 上输入 12345678901234（挑战码、收款账号末几位、金额（分）），再输入令牌显示的应答码", Printer.Prompt},
		{"ocra", "Type 12345678 on token OC1 and enter the response", "请在令牌 OC1 上输入 12345678，再输入令牌显示的应答码", Printer.Prompt},
		{"ushield", "Insert your U-shield and sign with it", "请插入U盾并签名", Printer.Prompt},
		{"ushield2", "Check the transaction on your U-shield's display and press its confirm button", "请在U盾屏幕上核对交易，然后按U盾上的确认键", Printer.Prompt},
		{"piv", "Insert your PIV card, check the text and sign with your PIN", "请插入 PIV 卡，核对内容后输入 PIN 签名", Printer.Prompt},
		{"phone", "Open the bank's app on your phone and scan the code", "请打开手机上的银行 App 扫描二维码", Printer.Prompt},
		{"unknown prompt", "Press the red button", "Press the red button", Printer.Prompt},
		{"transfer", "Transfer 1,234.56 yuan to 6299…0002 from 6299…0001", "向 6299…0002 转账 1,234.56 元（付款账户 6299…0001）", Printer.TxText},
		{"withdrawal", "Withdraw 500.00 yuan at ATM-1 from 6299…0001", "在 ATM-1 取款 500.00 元（取款账户 6299…0001）", Printer.TxText},
		{"friend", "Send 8.00 yuan to 6299…0002 from 6299…0001", "向好友 6299…0002 转账 8.00 元（付款账户 6299…0001）", Printer.TxText},
		{"aa", "Pay your share of 30.00 yuan to 6299…0002 from 6299…0001", "向 6299…0002 支付 AA 分摊款 30.00 元（付款账户 6299…0001）", Printer.TxText},
		{"refund", "Refund 9.90 yuan to 6299…0002 from 6299…0001", "向 6299…0002 退款 9.90 元（退款账户 6299…0001）", Printer.TxText},
		{"pay", "Pay 99.00 yuan to 6299…0003 from 6299…0001", "向 6299…0003 付款 99.00 元（付款账户 6299…0001）", Printer.TxText},
		{"another currency", "Pay 5.00 USD to 6299…0003 from 6299…0001", "Pay 5.00 USD to 6299…0003 from 6299…0001", Printer.TxText},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			if got := c.say(zh, c.in); got != c.want {
				t.Errorf("zh: %q, want %q", got, c.want)
			}
			if got := c.say(en, c.in); got != c.in {
				t.Errorf("en changed it: %q", got)
			}
		})
	}
	if zh.Tool("sms", "SMS code") != "短信验证码" || en.Tool("sms", "SMS code") != "SMS code" || zh.Tool("abacus", "Abacus") != "Abacus" {
		t.Error("Tool names")
	}
}

// The passport's message pages: each title and sentence said in Chinese, a
// tool's name too; English as it came; an unknown sentence as it came.
func TestPageTexts(t *testing.T) {
	t.Parallel()
	zh, en := In(ZH, nil), In(EN, nil)
	for _, c := range []struct{ in, want string }{
		{"Sign-in expired", "登录已过期"},
		{"This sign-in has expired or is unknown. Go back to the platform and start again.", "此次登录已过期或无法识别。请返回平台重新开始。"},
		{"You are signed out of the bank on this browser.", "您已在此浏览器上退出银行的所有服务。"},
		{"Your password is locked after too many failed attempts.", "您的密码因多次尝试失败已锁定。"},
		{"Your sms is locked after too many failed attempts.", "您的短信验证码因多次尝试失败已锁定。"},
		{"Insert the new U-shield: the bank's security helper makes its key on the token and the bank certifies it.", "请插入新的U盾：银行安全助手将在令牌上生成密钥，并由银行签发证书。"},
		{"Your U-shield with display is enrolled (certificate 532b07): it now answers the passport's and the bank's confirmations at level 5. It is on your tools list; if you lose it, report it lost there at once.",
			"您的二代U盾已绑定（证书 532b07）：现在可用于通行证和银行的认证级别 5 确认。它已列在您的认证工具中；如果遗失，请立即在那里挂失。"},
		{"Something nobody wrote down.", "Something nobody wrote down."},
	} {
		if got := zh.Page(c.in); got != c.want {
			t.Errorf("zh %q: %q, want %q", c.in, got, c.want)
		}
		if got := en.Page(c.in); got != c.in {
			t.Errorf("en changed %q to %q", c.in, got)
		}
	}
}

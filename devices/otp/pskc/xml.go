package pskc

// The XML shapes of RFC 6030, matched by local name (namespaces are checked
// on the container only, so prefixes are free).

type xEncryptionKey struct {
	KeyName    string       `xml:"KeyName"`
	DerivedKey *xDerivedKey `xml:"DerivedKey"`
	X509Data   *struct {
		Certificate string `xml:"X509Certificate"`
	} `xml:"X509Data"`
}

type xDerivedKey struct {
	KeyDerivationMethod struct {
		Algorithm    string `xml:"Algorithm,attr"`
		PBKDF2Params struct {
			Salt struct {
				Specified string `xml:"Specified"`
			} `xml:"Salt"`
			IterationCount string `xml:"IterationCount"`
			KeyLength      string `xml:"KeyLength"`
			PRF            struct {
				Algorithm string `xml:"Algorithm,attr"`
			} `xml:"PRF"`
		} `xml:"PBKDF2-params"`
	} `xml:"KeyDerivationMethod"`
	MasterKeyName string `xml:"MasterKeyName"`
}

type xMACMethod struct {
	Algorithm string      `xml:"Algorithm,attr"`
	MACKey    *xEncrypted `xml:"MACKey"`
}

type xEncrypted struct {
	EncryptionMethod struct {
		Algorithm string `xml:"Algorithm,attr"`
	} `xml:"EncryptionMethod"`
	CipherData struct {
		CipherValue string `xml:"CipherValue"`
	} `xml:"CipherData"`
}

type xValue struct {
	PlainValue     *string     `xml:"PlainValue"`
	EncryptedValue *xEncrypted `xml:"EncryptedValue"`
	ValueMAC       string      `xml:"ValueMAC"`
}

type xKeyPackage struct {
	DeviceInfo struct {
		Manufacturer string `xml:"Manufacturer"`
		SerialNo     string `xml:"SerialNo"`
		Model        string `xml:"Model"`
		UserID       string `xml:"UserId"`
	} `xml:"DeviceInfo"`
	Keys []xKey `xml:"Key"`
}

type xKey struct {
	ID                  string `xml:"Id,attr"`
	Algorithm           string `xml:"Algorithm,attr"`
	Issuer              string `xml:"Issuer"`
	AlgorithmParameters struct {
		Suite          string `xml:"Suite"`
		ResponseFormat *struct {
			Length   string `xml:"Length,attr"`
			Encoding string `xml:"Encoding,attr"`
		} `xml:"ResponseFormat"`
	} `xml:"AlgorithmParameters"`
	KeyReference string `xml:"KeyReference"`
	Data         struct {
		Secret       *xValue `xml:"Secret"`
		Counter      *xValue `xml:"Counter"`
		Time         *xValue `xml:"Time"`
		TimeInterval *xValue `xml:"TimeInterval"`
		TimeDrift    *xValue `xml:"TimeDrift"`
	} `xml:"Data"`
	Policy struct {
		StartDate  string   `xml:"StartDate"`
		ExpiryDate string   `xml:"ExpiryDate"`
		KeyUsage   []string `xml:"KeyUsage"`
		PINPolicy  *struct {
			PINKeyID     string `xml:"PINKeyId,attr"`
			PINUsageMode string `xml:"PINUsageMode,attr"`
			MinLength    string `xml:"MinLength,attr"`
			MaxLength    string `xml:"MaxLength,attr"`
			PINEncoding  string `xml:"PINEncoding,attr"`
		} `xml:"PINPolicy"`
	} `xml:"Policy"`
	UserID string `xml:"UserId"`
}

package httpapi

import (
	"errors"
	"net/http"
	"strings"

	"coffer"
)

// message is one entry of the error catalogue: the HTTP status of a code and
// its sentences; %s in a sentence is replaced by the field's name.
type message struct {
	status int
	zh, en string
}

// catalogue is the one table from error codes to statuses and messages.
var catalogue = map[coffer.Code]message{
	coffer.ErrInvalidJSON:        {http.StatusBadRequest, "请求体不是合法的 JSON 对象", "the request body is not a valid JSON object"},
	coffer.ErrInvalidField:       {http.StatusBadRequest, "%s格式错误", "invalid %s"},
	coffer.ErrMissingField:       {http.StatusBadRequest, "缺少%s", "missing %s"},
	coffer.ErrBodyTooLarge:       {http.StatusRequestEntityTooLarge, "请求体过大", "the request body is too large"},
	coffer.ErrUnsupportedMedia:   {http.StatusUnsupportedMediaType, "只接受 JSON 请求体", "only JSON request bodies are accepted"},
	coffer.ErrRouteNotFound:      {http.StatusNotFound, "接口不存在", "no such endpoint"},
	coffer.ErrMethodNotAllowed:   {http.StatusMethodNotAllowed, "请求方法不支持", "method not allowed"},
	coffer.ErrUsernameTaken:      {http.StatusConflict, "用户名已存在", "the username is taken"},
	coffer.ErrMobileTaken:        {http.StatusConflict, "手机号已注册", "the mobile number is already registered"},
	coffer.ErrEmailTaken:         {http.StatusConflict, "邮箱已注册", "the email is already registered"},
	coffer.ErrCardTaken:          {http.StatusConflict, "银行卡号已注册", "the card number is already registered"},
	coffer.ErrBadCredentials:     {http.StatusUnauthorized, "用户名或密码错误", "wrong username or password"},
	coffer.ErrUnauthorized:       {http.StatusUnauthorized, "未登录或登录已过期", "not logged in, or the session has expired"},
	coffer.ErrForbidden:          {http.StatusForbidden, "无权访问他人的数据", "that belongs to another user"},
	coffer.ErrBadPassword:        {http.StatusForbidden, "登录密码错误", "wrong login password"},
	coffer.ErrBadPayPassword:     {http.StatusForbidden, "支付密码错误", "wrong payment password"},
	coffer.ErrPayLocked:          {http.StatusLocked, "支付已锁定", "payments are locked after too many wrong payment passwords; try again later"},
	coffer.ErrTooManyAttempts:    {http.StatusTooManyRequests, "尝试次数过多，请稍后再试", "too many failed attempts; try again later"},
	coffer.ErrRateLimited:        {http.StatusTooManyRequests, "请求过于频繁，请稍后再试", "too many requests; try again later"},
	coffer.ErrUserNotFound:       {http.StatusNotFound, "用户不存在", "no such user"},
	coffer.ErrPayeeNotFound:      {http.StatusNotFound, "收款人不存在", "no such payee"},
	coffer.ErrProductNotFound:    {http.StatusNotFound, "产品不存在", "no such product"},
	coffer.ErrSamePayee:          {http.StatusBadRequest, "不能给自己转账", "payer and payee are the same"},
	coffer.ErrInsufficientFunds:  {http.StatusUnprocessableEntity, "余额不足", "insufficient balance"},
	coffer.ErrInsufficientHold:   {http.StatusUnprocessableEntity, "持有数量不足", "more than held"},
	coffer.ErrLimitSingle:        {http.StatusUnprocessableEntity, "超过单笔转账限额", "over the per-transfer limit"},
	coffer.ErrLimitDaily:         {http.StatusUnprocessableEntity, "超过每日支付限额", "over the daily limit"},
	coffer.ErrAmountOutOfRange:   {http.StatusUnprocessableEntity, "金额超出允许范围", "amount outside the allowed range"},
	coffer.ErrBelowMinimum:       {http.StatusUnprocessableEntity, "低于产品起购金额", "below the product's minimum"},
	coffer.ErrAmountTooSmall:     {http.StatusUnprocessableEntity, "金额过小", "amount too small"},
	coffer.ErrPriceChanged:       {http.StatusConflict, "金价已变动", "the gold price has changed"},
	coffer.ErrProductRetired:     {http.StatusUnprocessableEntity, "产品已停售", "the product is no longer sold"},
	coffer.ErrNotMatured:         {http.StatusUnprocessableEntity, "定期产品未到期", "a fixed-term product cannot be redeemed before it matures"},
	coffer.ErrUnknownMode:        {http.StatusBadRequest, "不支持的支付方式", "unknown payment mode"},
	coffer.ErrIdempotencyReuse:   {http.StatusConflict, "幂等键已用于另一个请求", "the idempotency key was used for a different request"},
	coffer.ErrIdempotencyPending: {http.StatusConflict, "相同请求正在处理中，请稍后重试", "the same request is still in progress; retry"},
	coffer.ErrDayClosed:          {http.StatusConflict, "该日已结息", "that day is closed already"},
	coffer.ErrUnavailable:        {http.StatusServiceUnavailable, "服务暂不可用，请稍后重试", "the service cannot take writes now; retry later"},
	coffer.ErrOverloaded:         {http.StatusServiceUnavailable, "服务繁忙，请稍后重试", "the service is busy; retry later"},
	coffer.ErrInternal:           {http.StatusInternalServerError, "服务器内部错误", "internal error"},
}

// fieldNames are the Chinese names of request fields, for messages.
var fieldNames = map[string]string{
	"username": "用户名", "password": "密码", "email": "邮箱", "mobile": "手机号", "cardnum": "银行卡号",
	"pay_password": "支付密码", "money": "金额", "detail": "详情", "payee": "收款人手机号", "payer": "付款人手机号",
	"mode": "支付方式", "kind": "理财产品种类", "time": "购买时间", "weight": "重量", "price": "金价",
	"code": "基金代码", "shares": "份额", "userid": "用户id", "cursor": "分页游标", "limit": "每页条数",
	"account": "账户类型", "request_id": "幂等键", "Idempotency-Key": "幂等键", "passwrd": "支付密码",
}

// describe returns the status and the message of err in the language asked for.
func describe(err error, english bool) (int, coffer.Code, string) {
	code := coffer.ErrorCode(err)
	m, ok := catalogue[code]
	if !ok {
		code, m = coffer.ErrInternal, catalogue[coffer.ErrInternal]
	}
	text, field := m.zh, ""
	var e *coffer.Error
	if errors.As(err, &e) {
		field = e.Field
	}
	if english {
		text = m.en
	} else if name, ok := fieldNames[field]; ok {
		field = name
	}
	if strings.Contains(text, "%s") {
		if field == "" {
			field = "field"
			if !english {
				field = "字段"
			}
		}
		text = strings.Replace(text, "%s", field, 1)
	}
	return m.status, code, text
}

"""Rules that replace a template's placeholder text with realistic content, in English or Chinese.

Each rule is a function (rng, lang) -> str named by a template box's `content` field. People, companies,
addresses and contacts come from faker's en_US / zh_CN locales, dates and times from the generator itself (below);
titles and sentences from the word sources (`corpus.py`); dishes, UI labels and buttons from the short vocabularies
below, written for this project.
"""
from __future__ import annotations

import datetime
import inspect

from . import corpus

DISHES = {
    "en": ["Grilled Salmon", "Caesar Salad", "Beef Burger", "Mushroom Risotto", "Tomato Soup", "Fish and Chips",
           "Chicken Curry", "Pancakes", "Lemon Tart", "Veggie Pizza", "Steak Frites", "Garden Salad", "Apple Pie",
           "Roast Chicken", "Pasta Carbonara", "Iced Coffee", "Green Tea", "Club Sandwich", "Shrimp Tacos"],
    "zh": ["宫保鸡丁", "麻婆豆腐", "红烧肉", "鱼香肉丝", "西红柿炒鸡蛋", "清蒸鲈鱼", "酸辣汤", "回锅肉", "小笼包",
           "扬州炒饭", "北京烤鸭", "糖醋排骨", "水煮鱼", "蛋炒饭", "牛肉面", "酸菜鱼", "绿茶", "豆浆", "春卷"],
}
BUTTONS = {
    "en": ["Sign in", "Log in", "Continue", "Submit", "Get started", "Buy now", "Add to cart", "Learn more",
           "Register", "Subscribe", "Book now", "Next", "Save", "Confirm"],
    "zh": ["登录", "继续", "提交", "立即开始", "立即购买", "加入购物车", "了解更多", "注册", "订阅", "立即预订",
           "下一步", "保存", "确定"],
}
SETTINGS = {
    "en": ["Notifications", "Dark mode", "Language", "Privacy", "Storage", "Bluetooth", "Wi-Fi", "Battery",
           "Sound", "Display", "Account", "Location", "Updates", "Security", "Help"],
    "zh": ["通知", "深色模式", "语言", "隐私", "存储空间", "蓝牙", "无线网络", "电池", "声音", "显示", "账户",
           "定位服务", "系统更新", "安全", "帮助"],
}
VALUES = {
    "en": ["On", "Off", "English", "Auto", "Never", "Always", "Connected", "85%", "Default", "Enabled"],
    "zh": ["开启", "关闭", "简体中文", "自动", "从不", "始终", "已连接", "默认", "已启用"],
}
LINKS = {
    "en": ["Forgot password?", "Create an account", "Need help?", "Terms of service", "Privacy policy"],
    "zh": ["忘记密码？", "创建账户", "需要帮助？", "服务条款", "隐私政策"],
}
EVENTS = {
    "en": ["Festival", "Conference", "Summit", "Concert", "Fair", "Workshop", "Exhibition", "Market", "Forum"],
    "zh": ["音乐节", "大会", "峰会", "音乐会", "博览会", "工作坊", "展览", "市集", "论坛"],
}
LABELS = {
    "en": ["Email", "Password", "Username", "Phone", "Full name"],
    "zh": ["邮箱", "密码", "用户名", "手机号", "姓名"],
}


def _pick(rng, options):
    return options[int(rng.integers(len(options)))]


def _l(lang: str) -> str:
    return "zh" if lang == "zh" else "en"


def title(rng, lang):
    if lang == "zh":
        return corpus.phrase(rng, "zh", int(rng.integers(2, 4)))
    if rng.random() < 0.5:
        return corpus.fake(rng, "en").catch_phrase().title()
    return corpus.phrase(rng, "en", int(rng.integers(2, 5))).title()


def subtitle(rng, lang):
    if lang == "zh":
        return corpus.phrase(rng, "zh", int(rng.integers(3, 6)))
    return corpus.fake(rng, "en").bs().capitalize()


def sentence(rng, lang):
    return corpus.sentence(rng, _l(lang))


def paragraph(rng, lang):
    return corpus.paragraph(rng, _l(lang), int(rng.integers(2, 4)))


def bullet(rng, lang):
    if lang == "zh":
        return corpus.phrase(rng, "zh", int(rng.integers(3, 7)))
    return corpus.phrase(rng, "en", int(rng.integers(3, 8))).capitalize()


def name(rng, lang):
    return corpus.fake(rng, _l(lang)).name()


def job(rng, lang):
    if lang == "zh":  # zh_CN's job provider often answers "其他"
        return _pick(rng, ["产品经理", "软件工程师", "设计总监", "销售经理", "市场专员", "财务顾问", "首席执行官", "项目经理"])
    return corpus.fake(rng, "en").job().split(",")[0]


def company(rng, lang):
    return corpus.fake(rng, _l(lang)).company()


def phone(rng, lang):
    f = corpus.fake(rng, _l(lang))
    return f.phone_number() if lang == "zh" else f.numerify("(###) ###-####")


def email(rng, lang):
    return corpus.fake(rng, _l(lang)).email()


def address(rng, lang):
    f = corpus.fake(rng, _l(lang))
    return f.address().replace("\n", ", ") if lang != "zh" else f.city() + f.street_address()


def url(rng, lang):
    return corpus.fake(rng, _l(lang)).domain_name()


# Dates and times are drawn from the sample's generator over a fixed range. faker's date_object() and time() draw a
# timestamp between 1970 and *now*, in the machine's time zone: the same seed gave a different "09:29" / "09:56" on
# a template a few minutes later, breaking "same seed, same bytes".
_DAY0, _DAYS = datetime.date(1970, 1, 1), (datetime.date(2025, 12, 31) - datetime.date(1970, 1, 1)).days + 1


def date(rng, lang):
    d = _DAY0 + datetime.timedelta(days=int(rng.integers(_DAYS)))
    return f"{d.year}年{d.month}月{d.day}日" if lang == "zh" else d.strftime("%B %d, %Y")


def time(rng, lang):
    m = int(rng.integers(24 * 60))
    return f"{m // 60:02d}:{m % 60:02d}"


def price(rng, lang):
    v = float(rng.choice([rng.uniform(2, 30), rng.uniform(30, 300)]))
    return f"¥{v:.0f}" if lang == "zh" else f"${v:.2f}"


def dish(rng, lang):
    return _pick(rng, DISHES[_l(lang)])


def button(rng, lang):
    return _pick(rng, BUTTONS[_l(lang)])


def setting(rng, lang):
    return _pick(rng, SETTINGS[_l(lang)])


def value(rng, lang):
    return _pick(rng, VALUES[_l(lang)])


def link(rng, lang):
    return _pick(rng, LINKS[_l(lang)])


def label(rng, lang):
    return _pick(rng, LABELS[_l(lang)])


def event(rng, lang):
    if lang == "zh":
        return corpus.fake(rng, "zh").city().rstrip("市") + _pick(rng, EVENTS["zh"])
    return f"{corpus.fake(rng, 'en').city()} {corpus.word(rng, 'en').title()} {_pick(rng, EVENTS['en'])}"


def product(rng, lang):
    if lang == "zh":
        return corpus.phrase(rng, "zh", 2) + _pick(rng, ["耳机", "背包", "台灯", "手表", "水杯", "键盘"])
    model = f"{chr(65 + int(rng.integers(26)))}{int(rng.integers(1, 99)) * 10}"
    return f"{corpus.word(rng, 'en').title()} {_pick(rng, ['Headphones', 'Backpack', 'Lamp', 'Watch', 'Bottle', 'Keyboard'])} {model}"


def rating(rng, lang):
    n = int(rng.integers(3, 2000))
    r = float(rng.uniform(3.5, 5.0))
    return f"{r:.1f}分 · {n}条评价" if lang == "zh" else f"{r:.1f} ({n} reviews)"


def number(rng, lang):
    return f"{int(rng.integers(1, 100))}"


def percent(rng, lang):
    return f"{int(rng.integers(5, 99))}%"


def total(rng, lang):
    return ("合计 " if lang == "zh" else "Total ") + price(rng, lang)


RULES = {k: v for k, v in list(globals().items())
         if inspect.isfunction(v) and v.__module__ == __name__ and not k.startswith("_")}

"""What the demo city's residents and grid workers write when they report an incident: a
description in the demo's language, from several templates per category, with the place
(community, building, entrance, gate) and the local hour of the report.

These are generated data, not interface text: they are stored in ``incidents.description`` as
a resident would have typed them, in one language, and are never translated when read. So they
live here as a template table per language, not in the Babel catalogues (whose strings follow
the reader's language, and whose msgids ``tests/test_i18n_details.py`` checks are interface
words).
"""

from __future__ import annotations

from string import Formatter

import numpy as np
import pandas as pd

# Per language and category, the templates; fields: {time} (the local hour, in words; {Time}
# capitalized, where a sentence starts with it), {community} (the grid's community),
# {building}, {entrance}, {gate}.
TEMPLATES: dict[str, dict[str, tuple[str, ...]]] = {
    "zh-CN": {
        "disputes": (
            "{time}，{community}{building}栋两户邻居因楼上漏水发生纠纷，请求社区调解",
            "{community}{building}栋{entrance}单元居民反映楼上住户{time}仍在装修，双方发生口角",
            "{time}，{community}{building}栋邻里因楼道公共空间使用发生争执",
            "{community}{gate}附近两位车主因争抢车位发生纠纷，{time}报告",
            "{time}，{community}{building}栋一户家庭因赡养老人问题发生矛盾，申请调解",
            "{community}{building}栋{entrance}单元楼上楼下因空调外机噪音发生邻里纠纷",
        ),
        "public_order": (
            "{time}，{community}{building}栋楼下有人聚会大声喧哗，噪音扰民",
            "{time}，{community}{gate}外流动摊贩占道经营，影响行人通行",
            "{community}{gate}附近工地{time}仍在施工，噪音扰民",
            "{time}，{community}广场舞音响音量过大，{building}栋居民投诉",
            "{time}，{community}{gate}外烧烤摊占道经营，油烟和噪音扰民",
            "{time}，{community}{building}栋有人酒后在楼下吵闹",
        ),
        "safety_hazard": (
            "{community}{building}栋{entrance}单元楼道堆放杂物，堵塞消防通道",
            "{time}，{community}{building}栋{entrance}单元有电动车在楼道内充电，存在火灾隐患",
            "{community}{building}栋外墙瓷砖松动，有坠落危险",
            "{time}，{community}{building}栋{entrance}单元楼道内闻到燃气味",
            "{community}{building}栋有住户私拉电线飞线充电",
            "{community}{building}栋{entrance}单元楼道堆放纸箱和旧家具，存在消防隐患",
        ),
        "sanitation": (
            "{community}{building}栋旁垃圾桶满溢，{time}仍未清运",
            "{community}{gate}外有人乱倒建筑垃圾和旧家具",
            "{community}{building}栋门前下水道堵塞，路面积水发臭",
            "{time}，{community}{building}栋旁绿化带内堆积生活垃圾",
            "{community}{gate}外垃圾分类投放点污水横流，气味难闻",
        ),
        "facilities": (
            "{time}，{community}{building}栋前路灯不亮，行人出行不便",
            "{community}{gate}外人行道井盖缺失，存在安全隐患",
            "{community}{building}栋{entrance}单元电梯故障停运，老人上下楼困难",
            "{community}{building}栋{entrance}单元楼梯扶手损坏",
            "{community}{building}栋{entrance}单元门禁损坏，单元门无法关闭",
            "{time}，{community}{gate}附近路灯整排不亮",
        ),
        "traffic": (
            "{time}，{community}{gate}外车辆乱停，占用人行道",
            "{community}{gate}外路口红绿灯故障",
            "{time}，{community}{gate}外货车违停，堵塞道路",
            "{community}{building}栋旁共享单车乱停放，阻碍通行",
            "{time}，{community}{gate}外车辆占用消防通道",
        ),
        "social_assistance": (
            "{community}{building}栋独居老人多日未见出门，请求上门查看",
            "{community}{building}栋{entrance}单元居民咨询低保申请，需要帮助",
            "{community}{building}栋老人家属请求网格员上门探视",
            "{time}，{community}{building}栋行动不便的居民请求协助就医",
            "{community}{building}栋{entrance}单元困难家庭申请临时救助",
        ),
    },
    "en": {
        "disputes": (
            "{Time}: neighbours in building {building}, {community}, argue over a leak from "
            "the flat above; they ask the community to mediate",
            "Residents of building {building}, entrance {entrance}, {community}, say the flat "
            "above is still renovating {time}; the two households quarrel",
            "{Time}: neighbours in building {building}, {community}, argue over the shared "
            "corridor",
            "Two drivers argue over a parking space near the {gate}, {community}; reported {time}",
            "{Time}: a family in building {building}, {community}, in dispute over caring for "
            "an elderly parent, asks for mediation",
            "Neighbours in building {building}, entrance {entrance}, {community}, in dispute "
            "over a noisy air-conditioner unit",
        ),
        "public_order": (
            "{Time}: a loud gathering below building {building}, {community}, disturbs residents",
            "{Time}: street vendors occupy the pavement outside the {gate}, {community}, "
            "blocking pedestrians",
            "Construction site near the {gate}, {community}, still working {time}; noise complaint",
            "{Time}: square dancing music too loud in {community}; residents of building "
            "{building} complain",
            "{Time}: barbecue stalls occupy the pavement outside the {gate}, {community}; "
            "smoke and noise",
            "{Time}: drunk people shouting below building {building}, {community}",
        ),
        "safety_hazard": (
            "Stairwell of building {building}, entrance {entrance}, {community}, blocked with "
            "clutter: fire escape obstructed",
            "{Time}: e-bikes charging in the stairwell of building {building}, entrance "
            "{entrance}, {community}: fire risk",
            "Loose facade tiles on building {building}, {community}, may fall",
            "{Time}: smell of gas in the stairwell of building {building}, entrance "
            "{entrance}, {community}",
            "A resident of building {building}, {community}, runs a charging cable from a window",
            "Cardboard and old furniture piled in the stairwell of building {building}, "
            "entrance {entrance}, {community}: fire hazard",
        ),
        "sanitation": (
            "Bins overflowing beside building {building}, {community}, still not emptied {time}",
            "Construction waste and old furniture dumped outside the {gate}, {community}",
            "Blocked drain in front of building {building}, {community}: standing water, bad smell",
            "{Time}: household rubbish piling up in the green belt beside building "
            "{building}, {community}",
            "Waste sorting point outside the {gate}, {community}, leaking and smelly",
        ),
        "facilities": (
            "{Time}: street light out in front of building {building}, {community}",
            "Manhole cover missing on the pavement outside the {gate}, {community}",
            "Lift out of service in building {building}, entrance {entrance}, {community}; "
            "elderly residents stuck",
            "Broken handrail in the stairs of building {building}, entrance {entrance}, "
            "{community}",
            "Entrance door lock broken at building {building}, entrance {entrance}, "
            "{community}: the door stays open",
            "{Time}: a whole row of street lights out near the {gate}, {community}",
        ),
        "traffic": (
            "{Time}: cars parked on the pavement outside the {gate}, {community}",
            "Traffic lights out of order at the junction outside the {gate}, {community}",
            "{Time}: truck illegally parked outside the {gate}, {community}, blocking the road",
            "Shared bikes parked across the path beside building {building}, {community}",
            "{Time}: cars blocking the fire lane outside the {gate}, {community}",
        ),
        "social_assistance": (
            "Elderly resident living alone in building {building}, {community}, not seen for "
            "days: please check",
            "Resident of building {building}, entrance {entrance}, {community}, asks for help "
            "with a minimum-income application",
            "Relatives ask the grid worker to visit an elderly resident of building "
            "{building}, {community}",
            "{Time}: resident of building {building}, {community}, with limited mobility asks "
            "for help getting to hospital",
            "Family in need in building {building}, entrance {entrance}, {community}, applies "
            "for temporary assistance",
        ),
    },
}
GATES = {
    "zh-CN": ("东门", "南门", "西门", "北门"),
    "en": ("east gate", "south gate", "west gate", "north gate"),
}


def _hour_words(language: str, hour: np.ndarray) -> np.ndarray:
    """The local hour of a report as a report writes it: ``21时许`` / ``around 9 pm``."""
    if language == "zh-CN":
        words = [f"{h}时许" for h in range(24)]
    else:
        words = [
            "around midnight" if h == 0 else "around noon" if h == 12 else
            f"around {h % 12} {'am' if h < 12 else 'pm'}"
            for h in range(24)
        ]  # fmt: skip
    return np.array(words, dtype=object)[hour]


def describe_incidents(
    rng: np.random.Generator,
    category: np.ndarray,
    local_hour: np.ndarray,
    community: np.ndarray,
    language: str = "zh-CN",
) -> np.ndarray:
    """A description per incident in ``language`` (``zh-CN`` or ``en``): one of its
    category's templates, filled with its community's name (in that language), a building
    (1-40), an entrance (1-4), a gate and the local hour of the report.

    Examples
    --------
    >>> rng = np.random.default_rng(3)
    >>> where = np.array(["安和社区"])
    >>> d = describe_incidents(rng, np.array(["facilities"]), np.array([21]), where)
    >>> "安和社区" in d[0]
    True
    >>> d = describe_incidents(rng, np.array(["traffic"]), np.array([9]), np.array(["Anhe"]), "en")
    >>> "Anhe" in d[0]
    True
    """
    if language not in TEMPLATES:
        raise ValueError(f"no demo descriptions in {language!r}")
    templates = TEMPLATES[language]
    n = len(category)
    pick = rng.random(n)
    building = rng.integers(1, 41, n)
    entrance = rng.integers(1, 5, n)
    gate = np.array(GATES[language], dtype=object)[rng.integers(0, 4, n)]
    hours = np.asarray(local_hour, dtype=np.int64)
    time = _hour_words(language, hours)
    at_start = [w[:1].upper() + w[1:] for w in _hour_words(language, np.arange(24))]
    fields = {
        "time": time,
        "Time": np.array(at_start, dtype=object)[hours],
        "community": np.asarray(community, dtype=object),
        "building": _NUMBERS[building],
        "entrance": _NUMBERS[entrance],
        "gate": gate,
    }
    out = np.empty(n, dtype=object)
    category = np.asarray(category)
    for code, choices in templates.items():
        rows = np.flatnonzero(category == code)
        which = (pick[rows] * len(choices)).astype(np.int64)
        for k, template in enumerate(choices):
            chosen = rows[which == k]
            out[chosen] = _fill(template, {name: f[chosen] for name, f in fields.items()})
    return out


_NUMBERS = np.array([str(i) for i in range(41)], dtype=object)


def _fill(template: str, fields: dict[str, np.ndarray]) -> np.ndarray:
    """``template`` filled row by row from ``fields`` (object arrays of str): its literal
    pieces and fields added as object arrays, in C, not formatted one row at a time."""
    n = len(next(iter(fields.values())))
    out = np.full(n, "", dtype=object)
    for literal, name, _, _ in Formatter().parse(template):
        if literal:
            out = out + literal
        if name is not None:
            out = out + fields[name]
    return out


def community_names(areas: pd.DataFrame, language: str) -> pd.Series:
    """Each grid's community name in ``language``, by grid code: the Chinese name
    (``name_zh``) for ``zh-CN`` where there is one, else the romanized one."""
    communities = areas[areas.level == "community"].set_index("code")
    names = communities["name"]
    if language == "zh-CN" and "name_zh" in communities:
        names = communities["name_zh"].where(communities["name_zh"].notna(), names)
    grids = areas[areas.level == "grid"]
    return pd.Series(grids.parent_code.map(names).to_numpy(), index=grids.code.to_numpy())

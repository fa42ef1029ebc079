"""Word lists the generator draws people from. Invented, public-domain-style names only."""

FIRST_NAMES = (
    "Ada", "Alan", "Alice", "Amara", "Anil", "Ana", "Arjun", "Aylin", "Bea", "Ben", "Bruno",
    "Carla", "Chen", "Chiara", "Dana", "Daniel", "Dara", "Diego", "Elena", "Emil", "Erin",
    "Farah", "Felix", "Fatima", "Grace", "Hana", "Hugo", "Ines", "Ivan", "Jana", "Jonas",
    "Juan", "Kai", "Kamal", "Kofi", "Lara", "Leo", "Lina", "Luca", "Maya", "Mei", "Milan",
    "Nadia", "Nia", "Noah", "Olga", "Omar", "Paula", "Pedro", "Priya", "Quinn", "Rafael",
    "Rosa", "Sami", "Sara", "Sofia", "Tariq", "Tomas", "Uma", "Vera", "Wei", "Yara", "Yusuf",
    "Zoe",
)

LAST_NAMES = (
    "Abbott", "Adeyemi", "Alvarez", "Andersson", "Bauer", "Becker", "Bianchi", "Brandt",
    "Castro", "Chen", "Costa", "Dubois", "Eriksen", "Fischer", "Fontaine", "Garcia", "Gupta",
    "Hansen", "Haddad", "Ito", "Jansen", "Kaur", "Keller", "Kim", "Kowalski", "Larsen",
    "Lehmann", "Lopez", "Martin", "Meyer", "Moreau", "Mori", "Nakamura", "Nguyen", "Novak",
    "Okafor", "Olsen", "Park", "Patel", "Perez", "Petrov", "Quinn", "Rossi", "Sato", "Schmidt",
    "Silva", "Singh", "Sousa", "Suzuki", "Tanaka", "Torres", "Vasquez", "Vogel", "Wagner",
    "Weber", "Wolf", "Yamada", "Young", "Zimmermann",
)

JOB_TITLES = (
    "Software Engineer", "Senior Software Engineer", "Product Manager", "Designer",
    "Support Agent", "Support Lead", "Data Analyst", "Account Executive", "Recruiter",
    "Finance Analyst", "IT Administrator", "QA Engineer", "Engineering Manager",
    "Technical Writer", "Marketing Manager",
)

DEPARTMENTS = (
    "Engineering", "Product", "Design", "Customer Support", "Sales", "Marketing",
    "Finance", "People", "IT", "Legal",
)

# RFC 2606 reserved names only: the sandbox must never point at a real domain.
INTERNAL_DOMAINS = ("example.com", "eu.example.com", "us.example.com")
EXTERNAL_DOMAINS = ("partner.example.net", "contractor.example.org", "agency.example")

SERVICE_ACCOUNTS = ("svc-jira-automation", "svc-backup", "svc-reporting", "svc-ci-bot")
